"""Shared fixtures for the end-to-end tests through the C ABI.

Markers: ``fast`` (CI, every submission: ``pytest -m "not slow"``) and ``slow`` (converged
settings, benchmarks). The default run is everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

try:  # an installed (regular or editable) package wins; otherwise use the source tree
    import solidxc  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "python"))
    import solidxc  # noqa: F401

#: Silicon, diamond structure: a = 5.431 Å in bohr (CODATA 2018 bohr radius).
SI_A = 10.263102582513


def pytest_configure(config):
    config.addinivalue_line("markers", "fast: quick end-to-end checks (small Ecut); run in CI")
    config.addinivalue_line("markers", "slow: converged settings; run for benchmarks, not in CI")


@pytest.fixture(scope="session")
def lib():
    """The raw ctypes library, with signatures declared."""
    from solidxc import _lib
    return _lib.load()


def si_lattice(a: float = SI_A):
    """fcc primitive vectors as rows, bohr."""
    return [[0.0, a / 2, a / 2], [a / 2, 0.0, a / 2], [a / 2, a / 2, 0.0]]


def si_atoms(a: float = SI_A):
    return [("Si", (0.0, 0.0, 0.0)), ("Si", (a / 4, a / 4, a / 4))]


@pytest.fixture
def isolated():
    """Runs a module-level function of a test file in a fresh interpreter, so that a crash
    (a signal, an abort) fails that one test instead of killing the run.

    Usage: ``isolated(case_function)``; returns the child's stdout.
    """
    def run(func, timeout: float = 300.0) -> str:
        module_file = sys.modules[func.__module__].__file__
        code = (
            "import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('isolated_case', {module_file!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            f"module.{func.__name__}()\n"
        )
        env = dict(os.environ)
        package_root = str(Path(solidxc.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([package_root, str(Path(__file__).resolve().parent),
                                             env.get("PYTHONPATH", "")])
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
        if proc.returncode < 0:
            pytest.fail(f"{func.__name__} crashed the interpreter with signal {-proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        if proc.returncode != 0:
            pytest.fail(f"{func.__name__} failed (exit {proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc.stdout
    return run

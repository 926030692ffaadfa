"""A short fuzz run of sxc_system_create's JSON and of the YAML dataset loader (bench/fuzz.py; the
100,000-input runs live there), and the loader inputs that earlier fuzz runs found to escape as
something other than an InputError."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import solidxc
from conftest import REPO

pytestmark = pytest.mark.fast

FUZZ = REPO / "bench" / "fuzz.py"
HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None


def fuzz_module():
    spec = importlib.util.spec_from_file_location("solidxc_bench_fuzz", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_fuzzer(target: str, runs: int) -> str:
    """bench/fuzz.py in its own interpreter: atheris when installed, else the seeded mutator."""
    env = dict(os.environ)
    package_root = str(Path(solidxc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = [f"-runs={runs}", "-seed=1"] if HAVE_ATHERIS else ["--seeded", str(runs), "--seed", "1"]
    proc = subprocess.run([sys.executable, str(FUZZ), target, *args], capture_output=True, text=True, env=env,
                          timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the {target} fuzzer found a failure (exit {proc.returncode}):\n{output[-6000:]}"
    return output


def test_fuzz_system_create_json_3000_inputs_without_a_failure():
    output = run_fuzzer("system-json", 3000)
    assert ("Done 3000 runs" in output) if HAVE_ATHERIS else ("3000 inputs, no failure" in output), output[-2000:]


def test_fuzz_yaml_loader_1500_inputs_without_a_failure():
    output = run_fuzzer("yaml", 1500)
    assert ("Done 1500 runs" in output) if HAVE_ATHERIS else ("1500 inputs, no failure" in output), output[-2000:]


def test_the_harness_reports_what_is_not_an_input_error(monkeypatch):
    # A loader bug (here: a TypeError) must escape the harness, or the fuzz runs could not fail.
    fuzz = fuzz_module()
    from solidxc import deepchem

    def broken(path):
        raise TypeError("a bug")
    monkeypatch.setattr(deepchem.DFTYamlLoader, "load_entries", staticmethod(broken))
    with pytest.raises(TypeError):
        fuzz.check_yaml(b"- {e_type: energy}")
    # and a status outside the documented ones from sxc_system_create is reported

    class Lib:
        @staticmethod
        def sxc_system_create(text, out):
            return 42

        @staticmethod
        def sxc_last_error():
            return b"?"
    monkeypatch.setattr(fuzz, "library", lambda: Lib)
    with pytest.raises(AssertionError, match="status 42"):
        fuzz.check_system_json(b"{}")


# ---- What the fuzz runs found: each must now be an InputError naming the problem -----------------

SI_SYSTEM = ("{moldesc: 'Si 0 0 0; Si 2.5658 2.5658 2.5658', "
             "alattice: [[0, 5.1316, 5.1316], [5.1316, 0, 5.1316], [5.1316, 5.1316, 0]]}")


FINDINGS = [
    (b"- e_type: energy\n  systems: [" + b"\xa1\xff" + b"]\n", "not valid YAML"),       # UnicodeDecodeError
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),                                     # RecursionError
    (f"- {{e_type: eig, true_val: [0.1], bands: [{{a: 1}}], systems: [{SI_SYSTEM}]}}".encode(), "bands"),  # TypeError
    (f"- {{e_type: eig, true_val: [[0.1, 2], 3], bands: [[0, 0, 1], [0, 0, 2]], systems: [{SI_SYSTEM}]}}".encode(),
     "true_val"),                                                                          # ValueError (ragged)
    (f"- {{e_type: lattice, true_val: 10, scales: [[1], 2, 3, 4], systems: [{SI_SYSTEM}]}}".encode(), "scales"),
    (f"- {{e_type: lattice, true_val: 10, scale_axes: 1.5, systems: [{SI_SYSTEM}]}}".encode(), "scale_axes"),
    (b"- {e_type: energy, true_val: 1, systems: [{moldesc: 'Si 0 0 0', alattice: [[1, 0, 0], [0, 1, 0], [0, 0, [1]]]}]}",
     "alattice"),                                                                          # ValueError (ragged)
    (b"- {e_type: energy, true_val: 1, systems: [{moldesc: [[14], [[0, 0]]], alattice: [[5, 0, 0], [0, 5, 0], [0, 0, 5]]}]}",
     "moldesc"),                                                                           # ValueError (reshape)
    (b"- {e_type: energy, true_val: 1, weight: 1" + b"0" * 400 + b", systems: [" + SI_SYSTEM.encode() + b"]}",
     "weight"),                                                                            # OverflowError
    (b"- {e_type: energy, true_val: 1, systems: [{moldesc: 'Si 0 0 0', spin: .inf, "
     b"alattice: [[5, 0, 0], [0, 5, 0], [0, 0, 5]]}]}", "spin"),                            # OverflowError
    (b"- {e_type: energy, true_val: 1, systems: [{moldesc: 'Si 0 0 0', spin: 1, magmoms: {a: 1}, "
     b"alattice: [[5, 0, 0], [0, 5, 0], [0, 0, 5]]}]}", "magmoms"),                         # TypeError
    (b"- {e_type: energy, 1: x, systems: [" + SI_SYSTEM.encode() + b"]}", "not a string"),  # TypeError (**options)
]


@pytest.mark.parametrize("text, field", FINDINGS, ids=[f"{i}-{field}" for i, (_, field) in enumerate(FINDINGS)])
def test_loader_refuses_fuzz_findings_naming_the_field(tmp_path, text, field):
    """Each of these escaped the loader as the exception in its comment."""
    from solidxc.deepchem import DFTYamlLoader
    path = tmp_path / "entries.yaml"
    path.write_bytes(text)
    with pytest.raises(solidxc.InputError) as excinfo:
        DFTYamlLoader.load_entries(path)
    assert field in str(excinfo.value), str(excinfo.value)


def test_loader_keeps_an_unvalidated_kpts_in_the_entry_name(tmp_path):
    # kpts: 4 (not a list) made DFTSystem's repr, and so the entry's default name, raise TypeError;
    # the core still refuses it when the System is built.
    from solidxc.deepchem import DFTYamlLoader
    path = tmp_path / "entries.yaml"
    path.write_bytes(b"- {e_type: energy, true_val: 1, systems: [{moldesc: 'Si 0 0 0', kpts: 4, "
                     b"alattice: [[5, 0, 0], [0, 5, 0], [0, 0, 5]]}]}")
    entry, = DFTYamlLoader.load_entries(path)
    assert "kpts=4" in entry.name
    with pytest.raises(solidxc.InputError, match="kpts"):
        entry.get_systems()[0].get_system()

"""The library tunes glibc's malloc once per process (``MallocTuning``, Swift): freed eigensolver
blocks are reused instead of being returned to the kernel and page-faulted in again.

Checked in fresh interpreters (the setting is per process): the tuned SCF gives the same bits as
one with glibc's defaults (``SOLIDXC_DEFAULT_MALLOC=1``), and takes far fewer page faults (counted
by the kernel, ``ru_minflt``, not timed).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import solidxc

SCRIPT = """
import hashlib, json, resource, numpy as np, solidxc
a = 10.26
lat = [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]
system = solidxc.System(lat, [("Si", [0, 0, 0]), ("Si", [a / 4, a / 4, a / 4])], pseudo="gth-pade", ecut=15, kpts=(4, 4, 4))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
r = solidxc.scf(system, xc="lda,pw", tol=1e-10, threads=1)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "energy": r.energy.hex(),
                  "density": hashlib.sha256(np.ascontiguousarray(r.density).tobytes()).hexdigest()}))
"""


def _run(wisdom: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "SOLIDXC_DEFAULT_MALLOC")}
    # One wisdom file for the runs compared, made by a warm-up run: FFTW's planner allocates as it
    # measures, and those faults belong to neither malloc setting.
    env["SOLIDXC_FFTW_WISDOM"] = str(wisdom)
    package_root = str(Path(solidxc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.fast
def test_tuned_malloc_gives_the_same_bits_with_far_fewer_page_faults(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    _run(tmp_path / "wisdom")
    tuned = _run(tmp_path / "wisdom")
    default = _run(tmp_path / "wisdom", SOLIDXC_DEFAULT_MALLOC="1")
    assert tuned["energy"] == default["energy"]
    assert tuned["density"] == default["density"]
    # Measured: 1,400 against 23,000-34,000 (Si, Ecut 15, 4x4x4; the heap holds too little free memory for
    # the per-step malloc_trim).
    assert tuned["faults"] < 0.25 * default["faults"], (tuned["faults"], default["faults"])


@pytest.mark.fast
def test_a_users_own_glibc_setting_is_left_alone(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    # The user's choice (here glibc's default threshold, made explicit) wins over the library's.
    _run(tmp_path / "wisdom")
    mine = _run(tmp_path / "wisdom", MALLOC_MMAP_THRESHOLD_="131072")
    default = _run(tmp_path / "wisdom", SOLIDXC_DEFAULT_MALLOC="1")
    assert mine["energy"] == default["energy"]
    assert mine["faults"] > 0.5 * default["faults"], (mine["faults"], default["faults"])

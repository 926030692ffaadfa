"""FFTW plans are measured (``FFTPlanning``, Swift) and the choices kept as FFTW wisdom in a file,
so that every process on a machine uses the same plans and gets the same bits, as FFTW_ESTIMATE's
model-chosen plans did.

Checked in fresh interpreters, each with its own wisdom file (``SOLIDXC_FFTW_WISDOM``):
- a second process reads the first one's wisdom, adds nothing to it and gives the same bits;
- two processes that start together on an empty file plan one after the other (the file lock) and
  give the same bits;
- ``SOLIDXC_FFT_PLANNING=estimate`` writes no file and agrees to rounding; an unknown mode is an
  input error naming the variable; a wisdom file that cannot be written does not stop a run.
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
import hashlib, json, numpy as np, solidxc
a = 10.26
lat = [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]
system = solidxc.System(lat, [("Si", [0, 0, 0]), ("Si", [a / 4, a / 4, a / 4])], pseudo="gth-pade", ecut=12, kpts=(3, 3, 3))
r = solidxc.scf(system, xc="lda,pw", tol=1e-10, threads=2)
print(json.dumps({"energy": r.energy.hex(), "value": r.energy,
                  "density": hashlib.sha256(np.ascontiguousarray(r.density).tobytes()).hexdigest()}))
"""


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDXC_FFT")}
    package_root = str(Path(solidxc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def _start(**extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(**extra))


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def _run(**extra: str) -> dict:
    return _finish(_start(**extra))


@pytest.mark.fast
def test_a_second_process_reuses_the_measured_plans_and_gives_the_same_bits(tmp_path):
    wisdom = tmp_path / "cache" / "wisdom"  # the directory is made on first use
    first = _run(SOLIDXC_FFTW_WISDOM=str(wisdom))
    text = wisdom.read_text()
    assert text.startswith("(fftw-3.") and len(text) > 100
    second = _run(SOLIDXC_FFTW_WISDOM=str(wisdom))
    assert second["energy"] == first["energy"]
    assert second["density"] == first["density"]
    assert wisdom.read_text() == text  # every plan was found in the file: nothing measured again


@pytest.mark.fast
def test_processes_planning_at_once_share_one_set_of_plans(tmp_path):
    wisdom = tmp_path / "wisdom"
    procs = [_start(SOLIDXC_FFTW_WISDOM=str(wisdom)) for _ in range(2)]
    a, b = (_finish(p) for p in procs)
    assert a["energy"] == b["energy"]
    assert a["density"] == b["density"]


@pytest.mark.fast
def test_estimate_mode_writes_no_wisdom_and_agrees_to_rounding(tmp_path):
    measured = _run(SOLIDXC_FFTW_WISDOM=str(tmp_path / "measured"))
    wisdom = tmp_path / "estimate"
    estimated = _run(SOLIDXC_FFT_PLANNING="estimate", SOLIDXC_FFTW_WISDOM=str(wisdom))
    assert not wisdom.exists()
    assert abs(estimated["value"] - measured["value"]) < 1e-11


@pytest.mark.fast
def test_an_unknown_planning_mode_is_an_input_error_naming_the_variable(tmp_path):
    proc = _start(SOLIDXC_FFT_PLANNING="fastest", SOLIDXC_FFTW_WISDOM=str(tmp_path / "w"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "SOLIDXC_FFT_PLANNING" in err and "'fastest'" in err and "measure, patient or estimate" in err


@pytest.mark.fast
def test_a_wisdom_file_that_cannot_be_written_does_not_stop_a_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _run(SOLIDXC_FFTW_WISDOM=str(blocker / "wisdom"))
    reference = _run(SOLIDXC_FFTW_WISDOM=str(tmp_path / "ok"))
    assert abs(result["value"] - reference["value"]) < 1e-11

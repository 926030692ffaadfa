"""Memory (issue 8): 1,000 forward+backward cycles of a small silicon cell with a neural LDA grow the
resident set by less than 5 MB. Runs bench/memory_cycles.py (which prints the RSS curve) in its own
interpreter; about 200 ms a cycle, so it is marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import solidxc
from conftest import REPO


def cycles(n: int, every: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(solidxc.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    env["OPENBLAS_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "memory_cycles.py"), "--cycles", str(n), "--every",
                           str(every), "--json"], capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_1000_forward_backward_cycles_grow_rss_by_less_than_5_mb():
    report = cycles(1000, 100)
    assert report["growth_mb"] < 5.0, report["curve"]


@pytest.mark.fast
def test_the_rss_probe_sees_a_leak_of_10_mb():
    # The probe must be able to see what the slow test bounds: a deliberate 10 MB leak shows.
    sys.path.insert(0, str(REPO / "bench"))
    from memory_cycles import rss_mb
    before = rss_mb()
    leak = [bytearray(1 << 20) for _ in range(10)]
    for block in leak:
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert rss_mb() - before > 9.0

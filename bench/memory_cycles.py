"""RSS over repeated forward+backward cycles: the SCF of a small silicon cell with a neural LDA
(solidxc.torch.scf), an energy + density loss, and loss.backward() (the adjoint's GMRES solve and
the network's parameter gradients), all freed each cycle.

::

    python bench/memory_cycles.py                  # 1000 cycles, RSS every 50
    python bench/memory_cycles.py --cycles 200 --every 20 --json

RSS is the resident set from /proc/self/statm after gc.collect() and malloc_trim(0) (glibc returns
freed heap pages, so what remains is live memory, not allocator slack). The first ``--warmup``
cycles (FFTW plans, torch's and OpenBLAS's buffers, the functional registry) are the baseline.
Prints a table of cycle, RSS (MB) and growth over the baseline; with --json a last line
``{"baseline_mb": ..., "final_mb": ..., "growth_mb": ..., "seconds": ...}``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

A_SI = 10.263102582513


def rss_mb() -> float:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def cycles(n: int, every: int, warmup: int):
    import torch
    import solidxc
    from solidxc.torch import NNLDA, scf

    torch.manual_seed(0)
    lattice = [[0, A_SI / 2, A_SI / 2], [A_SI / 2, 0, A_SI / 2], [A_SI / 2, A_SI / 2, 0]]
    system = solidxc.System(lattice, [("Si", (0, 0, 0)), ("Si", (A_SI / 4,) * 3)], ecut=5.0, kpts=(1, 1, 1))
    xc = NNLDA(2, nhid=8)
    with torch.no_grad():  # start near LDA scale so that every SCF converges
        xc.nnmodel[-1].weight.mul_(0.01)
    rows = []
    baseline = None
    start = time.time()
    for i in range(1, n + 1):
        out = scf(system, xc, tol=1e-8, threads=1)
        loss = out.energy + (out.density ** 2).sum() * system.dv
        loss.backward()
        xc.zero_grad()
        out.result.close()
        del out, loss
        if i == warmup:
            baseline = rss_mb()
            rows.append((i, baseline))
        elif i % every == 0 or i == n:
            rows.append((i, rss_mb()))
    return rows, baseline, time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, baseline, seconds = cycles(args.cycles, args.every, args.warmup)
    print(f"{'cycle':>6} {'RSS MB':>9} {'growth MB':>10}")
    for i, mb in rows:
        print(f"{i:6d} {mb:9.2f} {mb - baseline:10.2f}")
    final = rows[-1][1]
    print(f"{args.cycles} forward+backward cycles in {seconds:.1f} s ({seconds / args.cycles * 1e3:.0f} ms each); "
          f"RSS {baseline:.2f} MB after {args.warmup} -> {final:.2f} MB ({final - baseline:+.2f} MB)")
    if args.json:
        print(json.dumps({"baseline_mb": baseline, "final_mb": final, "growth_mb": final - baseline,
                          "seconds": seconds, "curve": rows}))


if __name__ == "__main__":
    main()

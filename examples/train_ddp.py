"""Data-parallel training of a HybridXC functional over processes (torch.distributed, gloo, CPU).

Each rank runs the SCFs of its share of the entries (entry i on rank i % world_size); the loss and
gradient of every step are those of one process on all entries (solidxc.distributed)::

    torchrun --nproc_per_node=2 examples/train_ddp.py --dataset python/solidxc/data/small.yaml --epochs 2

Without torchrun (``python3 examples/train_ddp.py ...``) it trains in one process. The loss of
each epoch (one optimiser step over all entries, before the step) is printed by rank 0. With more
than one rank the SCFs use one thread each unless --threads is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import solidxc  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(REPO / "python"))
    import solidxc  # noqa: F401

import torch
import torch.distributed as dist

from solidxc import distributed
from solidxc.deepchem import DFTXC, DFTYamlLoader, default_nnmodel

DEFAULT_DATASET = Path(solidxc.__file__).resolve().parent / "data" / "small.yaml"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default=str(DEFAULT_DATASET),
                   help="DeepChem-style DFT YAML file of entries (default: %(default)s)")
    p.add_argument("--split", default="train", help="train on the entries of this split ('all': every entry)")
    p.add_argument("--epochs", type=int, default=2, help="optimiser steps, each over all entries")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--xc", default="pbe", help="base functional of the HybridXC")
    p.add_argument("--hidden", type=int, default=10, help="hidden units of the network")
    p.add_argument("--layers", type=int, default=1, help="hidden layers of the network")
    p.add_argument("--aweight0", type=float, default=0.0, help="initial weight of the network (e = a NN + b base)")
    p.add_argument("--bweight0", type=float, default=1.0, help="initial weight of the base functional")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the network (rank 0's weights are used)")
    p.add_argument("--tol", type=float, default=None, help="SCF energy tolerance, Ha (default: DFTXC's, 1e-9)")
    p.add_argument("--threads", type=int, default=None, help="SCF threads per rank (default: 1 with several ranks)")
    p.add_argument("--on-failure", choices=("skip", "raise"), default="skip", help="what a failing entry does")
    p.add_argument("--save", default=None, help="write the trained model's state_dict here (rank 0)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rank, world = distributed.init("gloo")
    main_rank = rank == 0
    if not os.path.exists(args.dataset):
        if main_rank:
            print(f"train_ddp: dataset {args.dataset!r} not found (give --dataset FILE.yaml)", file=sys.stderr)
        distributed.finalize()
        return 2
    entries = DFTYamlLoader.load_entries(args.dataset)
    if args.split != "all":
        entries = [e for e in entries if e.split == args.split]
    if not entries:
        if main_rank:
            print(f"train_ddp: no entries of split {args.split!r} in {args.dataset}", file=sys.stderr)
        distributed.finalize()
        return 2

    torch.manual_seed(args.seed)
    nnmodel = default_nnmodel(args.xc, None, args.hidden, args.layers, 1)
    scf_options = {}
    if args.tol is not None:
        scf_options["tol"] = args.tol
    if args.threads is not None:
        scf_options["threads"] = args.threads
    model = DFTXC(args.xc, nnmodel, aweight0=args.aweight0, bweight0=args.bweight0, on_failure=args.on_failure,
                  scf_options=scf_options)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if main_rank:
        print(f"train_ddp: {len(entries)} entries from {args.dataset}, {world} rank(s) "
              f"(rank 0 runs {len(distributed.shard(entries, 0, world))}), {args.epochs} epochs", flush=True)

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # skipped entries are counted below
            loss = distributed.distributed_step(model, entries, optimizer)
        failures = torch.tensor([model.failures], dtype=torch.int64)
        if distributed.is_distributed():
            dist.all_reduce(failures)
        if main_rank:
            print(f"epoch {epoch}: loss {loss:.10e}  a {model.hybridxc.aweight.item():+.6f}  "
                  f"b {model.hybridxc.bweight.item():+.6f}  failures so far {int(failures)}  "
                  f"{time.perf_counter() - start:.1f} s", flush=True)

    if args.save and main_rank:
        torch.save(model.state_dict(), args.save)
        print(f"train_ddp: saved {args.save}", flush=True)
    distributed.finalize()
    return 0


if __name__ == "__main__":
    sys.exit(main())

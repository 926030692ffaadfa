#!/usr/bin/env python3
"""Wall time of SolidXC's backward pass (the adjoint of the converged SCF) against its forward
SCF on the same system, in one run ([grad] issue: density loss <= 1.0, energy loss <= 0.05).

Cases: bench/common.py CASES (si, al, ni, graphene; the default is si and al). Losses: energy
only (dL/dE = 1: no response solve), and a density loss L = sum((rho - rho_ref)^2) dv with a
reference density that lacks the crystal's symmetry (the backward pass symmetrises dL/drho).
Forward: SCF to 1e-10 Ha from the atomic guess. Backward: Dyson solve to relative residual
1e-10. Each is repeated in one process (in-process times); medians are reported. bench/run_all.py
runs the same measurement for every case.

Usage: python3 bench/backward_vs_forward.py [--repeats 3] [--threads 1] [--cases si al]
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", nargs="+", choices=sorted(common.CASES), default=["si", "al"])
    args = parser.parse_args()
    print(f"{'case':64s} {'forward (s)':>11s} {'bwd E (s)':>10s} {'bwd rho (s)':>11s} {'E ratio':>8s} {'rho ratio':>9s} {'GMRES':>6s} {'residual':>9s}")
    for name in args.cases:
        case = common.CASES[name]
        b = common.run_backward(case.solidxc_spec(args.threads), args.repeats, progress=f"{name} ")
        m = b["median"]
        print(f"{case.label:64s} {m['forward']:11.2f} {m['backward_energy']:10.3f} {m['backward_density']:11.2f} "
              f"{b['energy_ratio']:8.3f} {b['density_ratio']:9.2f} {b['gmres']:6d} {b['residual']:9.1e}", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Wall time of SolidXC's backward pass (the adjoint of the converged SCF) against its forward
SCF on the same system, in one run ([grad] issue: density loss <= 1.0, energy loss <= 0.05).

Cases, as in bench/si_vs_abinit.py and bench/metals_vs_abinit.py:
- si: Si diamond (a = 5.431 A), LDA (PW92), GTH-Pade, Ecut 20 Ha, 4x4x4, 8 bands.
- al: Al fcc (a = 4.05 A), PBE, GTH-PBE, Ecut 20 Ha, 8x8x8, Fermi-Dirac 0.01 Ha, 6 bands.

Losses: energy only (dL/dE = 1: no response solve), and a density loss
L = sum((rho - rho_ref)^2) dv with a reference density that lacks the crystal's symmetry (the
backward pass symmetrises dL/drho). Forward: SCF to 1e-10 Ha from the atomic guess. Backward:
Dyson solve to relative residual 1e-10. Each is repeated; medians are reported. Times are
in-process (the library is loaded once), 1 thread unless --threads.

Usage: python3 bench/backward_vs_forward.py [--repeats 3] [--threads 1] [--cases si al]
"""
import argparse
import statistics
import time

import numpy as np

import solidxc

BOHR = 0.52917721092
CASES = {
    "si": dict(title="Si LDA, Ecut 20, 4x4x4", a=5.431, atoms=[("Si", [0, 0, 0]), ("Si", [0.25, 0.25, 0.25])],
               pseudo="gth-pade", xc="lda,pw", ecut=20.0, kpts=(4, 4, 4), nbands=8, smearing=None),
    "al": dict(title="Al PBE, Ecut 20, 8x8x8, FD 0.01 Ha", a=4.05, atoms=[("Al", [0, 0, 0])], pseudo="gth-pbe",
               xc="pbe", ecut=20.0, kpts=(8, 8, 8), nbands=6, smearing="fermi-dirac"),
}


def system(case):
    a = case["a"] / BOHR
    lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    atoms = [(el, list(a * np.array(x))) for el, x in case["atoms"]]
    return solidxc.System(lattice, atoms, pseudo=case["pseudo"], ecut=case["ecut"], kpts=case["kpts"],
                          smearing=case["smearing"], temperature=0.01 if case["smearing"] else None)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args()
    print(f"{'case':38s} {'forward (s)':>11s} {'bwd E (s)':>10s} {'bwd rho (s)':>11s} {'E ratio':>8s} {'rho ratio':>9s} {'GMRES':>6s} {'residual':>9s}")
    for name in args.cases:
        case = CASES[name]
        sysm = system(case)
        fwd, bwd_e, bwd_rho = [], [], []
        for _ in range(args.repeats):
            t, result = timed(lambda: solidxc.scf(sysm, case["xc"], tol=1e-10, nbands=case["nbands"], threads=args.threads))
            fwd.append(t)
            t, _ = timed(lambda: result.backward(1.0))
            bwd_e.append(t)
            rng = np.random.default_rng(0)
            reference = result.density * (1 + 0.1 * rng.standard_normal(result.density.shape))
            t, adj = timed(lambda: result.backward(0.0, 2 * (result.density - reference) * result.dv, tol=1e-10))
            bwd_rho.append(t)
        f, e, r = statistics.median(fwd), statistics.median(bwd_e), statistics.median(bwd_rho)
        print(f"{case['title']:38s} {f:11.2f} {e:10.3f} {r:11.2f} {e / f:8.3f} {r / f:9.2f} {adj.iterations:6d} {adj.residual:9.1e}")


if __name__ == "__main__":
    main()

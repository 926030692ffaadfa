#!/usr/bin/env python3
"""Wall time of SolidXC against ABINIT 9.6.2 on the same Si input, in one run.

Si diamond (a = 5.431 A), LDA (libxc LDA_X + LDA_C_PW, ABINIT ixc -001012), GTH-Pade
pseudopotential (the same parameters, python/tests/reference/abinit/psp/Si.gth-pade.psp10),
Ecut 20 Ha, Gamma-centred 4x4x4 k-grid, 8 bands, the default FFT grid (30^3 in both codes),
energy tolerance 1e-10 Ha. Each code runs as a whole process (start-up included), the two
alternate, each case is repeated and the median is reported.

Both codes use the crystal's space group (ABINIT kptopt 1, SolidXC's default: 8 k-points);
--time-reversal-only adds ABINIT runs with kptopt 2, nsym 1 (36 k-points).

Usage: python3 bench/si_vs_abinit.py [--repeats 3] [--threads 1]
Needs: abinit (apt-get install abinit) and an installed solidxc (pip install .).
"""
import argparse
import pathlib
import shutil
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

CASE = common.CASES["si"]
PSP = common.PSP_DIR / CASE.psp
ECUT, KPTS, TOL = CASE.ecut, CASE.kpts, CASE.tol


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="SolidXC threads over k-points (ABINIT runs serial)")
    parser.add_argument("--time-reversal-only", action="store_true",
                        help="also run ABINIT with time reversal only (kptopt 2, nsym 1)")
    args = parser.parse_args()
    common.check_abinit()
    spec = CASE.solidxc_spec(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        shutil.copy(PSP, work / PSP.name)
        runners = {
            "solidxc": lambda: common.run_solidxc(spec),
            "abinit_sym": lambda: common.run_abinit(work, "si_sym", CASE.abinit_deck(True)),
        }
        if args.time_reversal_only:
            runners["abinit_tr"] = lambda: common.run_abinit(work, "si_tr", CASE.abinit_deck(False))
        med, info, _ = common.alternate(runners, args.repeats)
    print(f"Si LDA (PW92), GTH-Pade, Ecut {ECUT} Ha, k {KPTS[0]}x{KPTS[1]}x{KPTS[2]}, tol {TOL} Ha; "
          f"median of {args.repeats} alternating runs; SolidXC threads = {args.threads}, ABINIT serial")
    print(f"{'code':34s} {'k-points':>8s} {'wall (s)':>9s} {'E (Ha)':>16s}")
    for label, key in common.rows(med):
        print(f"{label:34s} {info[key]['nk']:8d} {med[key]:9.2f} {info[key]['energy']:16.10f}")
    common.print_ratios(med)
    print(f"|E(SolidXC) - E(ABINIT)| = {abs(info['solidxc']['energy'] - info['abinit_sym']['energy']):.2e} Ha")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Wall time of SolidXC against ABINIT 9.6.2 on the same metal inputs, in one run ([metals] issue).

Two cases, both fcc with one atom at the origin, PBE (libxc GGA_X_PBE + GGA_C_PBE, ABINIT
ixc -101130), GTH-PBE pseudopotentials (the same parameters: python/tests/reference/abinit/psp/
Al.gth-pbe.psp10, Ni.gth-pbe.psp10), Gamma-centred k-grids, Fermi-Dirac smearing kT = 0.01 Ha
(ABINIT occopt 3, tsmear 0.01), energy tolerance 1e-10 Ha (toldfe / tol), the default FFT grid
(the same in both codes; the table shows it), explicit nband as in the reference decks:

- al: Al, a = 4.05 A, q3, Ecut 20 Ha, 8x8x8, 6 bands.
- ni: Ni, a = 3.52 A, q18, collinear spin (nsppol 2, spinat 0 0 1 = magmoms [1.0] muB),
  Ecut 120 Ha, 4x4x4, 14 bands per spin. ABINIT uses diemix 0.7: with its default mixing it
  converges to the spin-flipped state (M = -|M|, same energy); see the reference README.

Other ABINIT variables keep their defaults (e.g. nline 4), as in bench/si_vs_abinit.py. The
reported energy is the free energy F = E - TS (ABINIT's etotal, SolidXC's result.energy); M is
the total magnetisation (ABINIT: "Total magnetization (exact up - dn)"), |M| the absolute one
(SolidXC only: ABINIT prints it only with a density file).

Each code runs as a whole process (start-up included), the three runs alternate, each case is
repeated and the median is reported. Both codes use the crystal's space group (ABINIT kptopt 1,
SolidXC's default); --time-reversal-only adds ABINIT runs with kptopt 2, nsym 1.

A SolidXC run longer than --solidxc-timeout (default 900 s) is stopped and reported with its
last SCF iteration; its wall time and the ratios are then lower bounds.

Usage: python3 bench/metals_vs_abinit.py [--repeats 3] [--threads 1] [--cases al ni] [--solidxc-timeout 900]
Needs: abinit (apt-get install abinit) and an installed solidxc (pip install .).
"""
import argparse
import pathlib
import shutil
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

CASES = {name: common.CASES[name] for name in ("al", "ni")}
TSMEAR = 0.01
ENERGY_WARN_PER_ATOM = 1e-5


def report(name, case, repeats, threads, med, info):
    k = case.kpts
    spin = bool(case.magmoms)
    print(f"{case.title}, Ecut {case.ecut} Ha, k {k[0]}x{k[1]}x{k[2]}, Fermi-Dirac {TSMEAR} Ha, "
          f"{case.nband} bands, tol {case.tol} Ha; median of {repeats} alternating runs; "
          f"SolidXC threads = {threads}, ABINIT serial")
    head = f"{'code':34s} {'k-points':>8s} {'FFT':>8s} {'wall (s)':>9s} {'F (Ha)':>16s}"
    if spin:
        head += f" {'M (muB)':>9s} {'|M| (muB)':>9s}"
    print(head + f" {'SCF it.':>7s}")
    for label, key in common.rows(med):
        r = info[key]
        fft = "x".join(map(str, r["ngfft"])) if r["ngfft"] and len(set(r["ngfft"])) > 1 else \
            (f"{r['ngfft'][0]}^3" if r["ngfft"] else "?")
        nk = f"{r['nk']:8d}" if r["nk"] is not None else f"{'-':>8s}"
        wall = f"{med[key]:9.2f}" if not r.get("stopped") else f"{'> ' + format(med[key], '.0f'):>9s}"
        line = f"{label:34s} {nk} {fft:>8s} {wall} {r['energy']:16.10f}"
        if spin:
            m = r["magnetization"]
            if key == "solidxc" and m is not None:
                line += f" {m[0]:9.6f} " + (f"{m[1]:9.6f}" if m[1] == m[1] else f"{'-':>9s}")
            else:
                line += f" {m:9.6f} {'-':>9s}" if m is not None else f" {'-':>9s} {'-':>9s}"
        it = r["iterations"]
        line += f" {it if it is not None else '-':>7}"
        if r.get("stopped"):
            line += f"  STOPPED (last iteration: dE {r['last_dE']:.1e} Ha, |drho| {r['last_drho']:.1e} e)"
        elif not r["converged"]:
            line += "  NOT CONVERGED"
        print(line)
    stopped = info["solidxc"].get("stopped", False)
    common.print_ratios(med, lower_bound=stopped)
    e = info["solidxc"]["energy"]
    d_sym = abs(e - info["abinit_sym"]["energy"])
    d_tr = abs(e - info["abinit_tr"]["energy"]) if "abinit_tr" in info else 0.0
    print(f"|F(SolidXC) - F(ABINIT, default symmetry)| = {d_sym:.2e} Ha"
          + (f"; |F(SolidXC) - F(ABINIT, time reversal only)| = {d_tr:.2e} Ha" if "abinit_tr" in info else "")
          + (" (SolidXC: last iterate of the stopped run, not converged)" if stopped else ""))
    if spin:
        for label, key in common.rows(med):
            m = info[key]["magnetization"]
            m = m[0] if isinstance(m, list) else m
            if m is not None and abs(m) < 1e-2:
                print(f"note: {label} ends non-magnetic (M = {m:.1e} muB) from the initial moment {case.magmoms}")
    if stopped:
        print("SolidXC was stopped at the time limit; its wall time and the ratios are lower bounds")
        return
    if info["solidxc"]["ngfft"] != info["abinit_sym"]["ngfft"]:
        print(f"WARNING: FFT grids differ: SolidXC {info['solidxc']['ngfft']}, ABINIT {info['abinit_sym']['ngfft']}")
    if max(d_tr, d_sym) > ENERGY_WARN_PER_ATOM:       # one atom per cell
        print(f"WARNING: {name}: the energies differ by more than {ENERGY_WARN_PER_ATOM:g} Ha/atom "
              "(settings mismatch or bug)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="SolidXC threads over k-points (ABINIT runs serial)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--solidxc-timeout", type=float, default=900.0,
                        help="stop a SolidXC run after this many seconds and report it (0: no limit); default 900")
    parser.add_argument("--print-decks", action="store_true", help="print the ABINIT inputs and exit")
    parser.add_argument("--time-reversal-only", action="store_true",
                        help="also run ABINIT with time reversal only (kptopt 2, nsym 1)")
    args = parser.parse_args()
    if args.print_decks:
        for name in args.cases:
            for symmetry in (True, False):
                print(f"# {name}, {'kptopt 1' if symmetry else 'kptopt 2, nsym 1'}\n{CASES[name].abinit_deck(symmetry)}")
        return
    common.check_abinit()
    first = True
    for name in args.cases:
        case = CASES[name]
        spec = case.solidxc_spec(args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            work = pathlib.Path(tmp)
            shutil.copy(common.PSP_DIR / case.psp, work / case.psp)
            stopped = []

            def solidxc():       # once stopped at the time limit, later repeats reuse that result
                if stopped:
                    return stopped[0]
                result = common.run_solidxc(spec, timeout=args.solidxc_timeout or None)
                if result["stopped"]:
                    stopped.append(result)
                return result

            runners = {
                "solidxc": solidxc,
                "abinit_sym": lambda: common.run_abinit(work, f"{name}_sym", case.abinit_deck(True)),
            }
            if args.time_reversal_only:
                runners["abinit_tr"] = lambda: common.run_abinit(work, f"{name}_tr", case.abinit_deck(False))
            med, info, _ = common.alternate(runners, args.repeats, label=f"{name} ")
        if not first:
            print()
        first = False
        report(name, case, args.repeats, args.threads, med, info)
        sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Wall time of SolidXC against ABINIT 9.6.2 on the same Si input, in one run.

Si diamond (a = 5.431 A), LDA (libxc LDA_X + LDA_C_PW, ABINIT ixc -001012), GTH-Pade
pseudopotential (the same parameters, python/tests/reference/abinit/psp/Si.gth-pade.psp10),
Ecut 20 Ha, Gamma-centred 4x4x4 k-grid, 8 bands, the default FFT grid (30^3 in both codes),
energy tolerance 1e-10 Ha. Each code runs as a whole process (start-up included), the two
alternate, each case is repeated and the median is reported.

ABINIT runs twice: with its default symmetry handling (kptopt 1: the point group reduces the
grid to 8 k-points) and with time reversal only (kptopt 2, nsym 1: 36 k-points, what SolidXC
does today).

Usage: python3 bench/si_vs_abinit.py [--repeats 3] [--threads 1]
Needs: abinit (apt-get install abinit) and an installed solidxc (pip install .).
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PSP = ROOT / "python" / "tests" / "reference" / "abinit" / "psp" / "Si.gth-pade.psp10"
A_BOHR = 5.431 / 0.52917721092
LATTICE = [[0.0, A_BOHR / 2, A_BOHR / 2], [A_BOHR / 2, 0.0, A_BOHR / 2], [A_BOHR / 2, A_BOHR / 2, 0.0]]
ATOMS = [("Si", [0.0, 0.0, 0.0]), ("Si", [A_BOHR / 4] * 3)]
ECUT, KPTS, NBAND, TOL = 20.0, (4, 4, 4), 8, 1e-10


def abinit_deck(symmetry: bool) -> str:
    rprim = "  ".join(" ".join(repr(x) for x in row) for row in LATTICE)
    xcart = "  ".join(" ".join(repr(x) for x in pos) for _, pos in ATOMS)
    lines = [
        "acell 1 1 1", f"rprim {rprim}", "ntypat 1", "znucl 14", "natom 2", "typat 1 1", f"xcart {xcart}",
        f"ecut {ECUT}", "ixc -001012", f"ngkpt {KPTS[0]} {KPTS[1]} {KPTS[2]}", "nshiftk 1", "shiftk 0 0 0",
        f"nband {NBAND}", "nstep 100", f"toldfe {TOL}", "diemac 12", "occopt 1", 'pp_dirpath "."',
        f'pseudos "{PSP.name}"', "prtwf 0", "prtden 0", "prteig 0", "chksymbreak 0",
    ]
    lines += ["kptopt 1"] if symmetry else ["kptopt 2", "nsym 1"]
    return "\n".join(lines) + "\n"


def run_abinit(workdir: pathlib.Path, symmetry: bool):
    tag = "sym" if symmetry else "tr"
    deck = workdir / f"si_{tag}.abi"
    deck.write_text(abinit_deck(symmetry))
    for f in workdir.glob(f"si_{tag}.abo*"):
        f.unlink()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(["abinit", deck.name], cwd=workdir, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"abinit failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    out = (workdir / f"si_{tag}.abo").read_text()
    energy = float(re.findall(r"^\s*etotal\s+([-0-9.Ee+]+)", out, re.M)[-1])
    nkpt = int(re.findall(r"^\s*nkpt\s+(\d+)", out, re.M)[-1])
    return wall, energy, nkpt


SOLIDXC_SCRIPT = """
import json, sys, solidxc
spec = json.loads(sys.argv[1])
system = solidxc.System(spec["lattice"], spec["atoms"], pseudo="gth-pade", ecut=spec["ecut"], kpts=tuple(spec["kpts"]))
r = solidxc.scf(system, xc="lda,pw", tol=spec["tol"], nbands=spec["nband"], threads=spec["threads"])
print(json.dumps({"energy": r.energy, "nk": len(r.kweights), "iterations": r.iterations}))
"""


def run_solidxc(threads: int):
    spec = {"lattice": LATTICE, "atoms": ATOMS, "ecut": ECUT, "kpts": KPTS, "tol": TOL, "nband": NBAND, "threads": threads}
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SOLIDXC_SCRIPT, json.dumps(spec)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"solidxc failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, data["energy"], data["nk"], data["iterations"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="SolidXC threads over k-points (ABINIT runs serial)")
    args = parser.parse_args()
    if shutil.which("abinit") is None:
        sys.exit("abinit not found: apt-get install abinit")
    times = {"abinit_sym": [], "abinit_tr": [], "solidxc": []}
    info = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        shutil.copy(PSP, work / PSP.name)
        for i in range(args.repeats):
            for key in ("solidxc", "abinit_sym", "abinit_tr") if i % 2 == 0 else ("abinit_tr", "abinit_sym", "solidxc"):
                if key == "solidxc":
                    wall, energy, nk, iterations = run_solidxc(args.threads)
                    info[key] = (energy, nk, iterations)
                else:
                    wall, energy, nk = run_abinit(work, key == "abinit_sym")
                    info[key] = (energy, nk, None)
                times[key].append(wall)
                print(f"  run {i + 1}: {key:11s} {wall:7.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"Si LDA (PW92), GTH-Pade, Ecut {ECUT} Ha, k {KPTS[0]}x{KPTS[1]}x{KPTS[2]}, tol {TOL} Ha; "
          f"median of {args.repeats} alternating runs; SolidXC threads = {args.threads}, ABINIT serial")
    print(f"{'code':34s} {'k-points':>8s} {'wall (s)':>9s} {'E (Ha)':>16s}")
    rows = [("SolidXC (time reversal only)", "solidxc"), ("ABINIT 9.6.2, default symmetry", "abinit_sym"),
            ("ABINIT 9.6.2, time reversal only", "abinit_tr")]
    for label, key in rows:
        energy, nk, _ = info[key]
        print(f"{label:34s} {nk:8d} {med[key]:9.2f} {energy:16.10f}")
    print(f"ratio SolidXC / ABINIT (default symmetry):   {med['solidxc'] / med['abinit_sym']:.2f}")
    print(f"ratio SolidXC / ABINIT (time reversal only): {med['solidxc'] / med['abinit_tr']:.2f}")
    print(f"|E(SolidXC) - E(ABINIT)| = {abs(info['solidxc'][0] - info['abinit_tr'][0]):.2e} Ha")


if __name__ == "__main__":
    main()

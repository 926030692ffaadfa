"""What the SolidXC-vs-ABINIT benchmarks share: ABINIT decks, whole-process timing of both codes,
alternating repeats and medians.

Each code runs as a whole process (start-up included), with OMP_NUM_THREADS=1 and
OPENBLAS_NUM_THREADS=1; ABINIT is serial, SolidXC gets `threads` threads over k-points. ABINIT
runs with its default symmetry handling (kptopt 1), the comparison against ABINIT at its best;
SolidXC uses the space group too (its default). On request ABINIT also runs with time reversal
only (kptopt 2, nsym 1).
"""
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PSP_DIR = ROOT / "python" / "tests" / "reference" / "abinit" / "psp"
BOHR_ANGSTROM = 0.52917721092      # PySCF's constant, as the ABINIT reference decks use
ZNUCL = {"Al": 13, "Si": 14, "Ni": 28}
MODES = ("solidxc", "abinit_sym", "abinit_tr")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def fcc_lattice(a_bohr: float) -> list:
    """fcc primitive cell a/2 [[0,1,1],[1,0,1],[1,1,0]] (rows, bohr), as the reference decks."""
    h = a_bohr / 2
    return [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]


def abinit_deck(lattice, atoms, psp_file: str, settings: list, symmetry: bool) -> str:
    """An ABINIT input: geometry in bohr (acell 1, rprim = lattice rows, Cartesian xcart), one
    species, the `settings` lines ("name value"), then the k-point symmetry mode:
    kptopt 1 (ABINIT's default symmetry) or kptopt 2 + nsym 1 (time reversal only)."""
    elements = sorted({el for el, _ in atoms})
    if len(elements) != 1:
        raise ValueError("abinit_deck: one species only")
    rprim = "  ".join(" ".join(repr(float(x)) for x in row) for row in lattice)
    xcart = "  ".join(" ".join(repr(float(x)) for x in pos) for _, pos in atoms)
    lines = [
        "acell 1 1 1", f"rprim {rprim}", "ntypat 1", f"znucl {ZNUCL[elements[0]]}", f"natom {len(atoms)}",
        "typat " + " ".join("1" for _ in atoms), f"xcart {xcart}",
    ]
    lines += list(settings)
    lines += ['pp_dirpath "."', f'pseudos "{psp_file}"', "prtwf 0", "prtden 0", "prteig 0", "chksymbreak 0"]
    lines += ["kptopt 1"] if symmetry else ["kptopt 2", "nsym 1"]
    return "\n".join(lines) + "\n"


def run_abinit(workdir: pathlib.Path, name: str, deck: str) -> dict:
    """Runs `abinit name.abi` in workdir (which holds the psp file). Returns wall (s), energy
    (etotal, Ha: the free energy with smearing), nk, iterations, converged, ngfft and, for
    nsppol 2, magnetization (ABINIT's "Total magnetization (exact up - dn)")."""
    path = workdir / f"{name}.abi"
    path.write_text(deck)
    for f in workdir.glob(f"{name}.abo*"):       # ABINIT would otherwise write name.abo0001 ...
        f.unlink()
    for f in workdir.glob(f"{name}o_*"):
        f.unlink()
    start = time.perf_counter()
    proc = subprocess.run(["abinit", path.name], cwd=workdir, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"abinit failed ({name}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    out = (workdir / f"{name}.abo").read_text()
    steps = re.findall(r"At SCF step\s+(\d+), etot is converged", out)
    ngfft = re.findall(r"^\s*ngfft\s+(\d+)\s+(\d+)\s+(\d+)\s*$", out, re.M)
    mag = re.findall(r"Total magnetization \(exact up - dn\):\s+(\S+)", out)
    result = {
        "wall": wall,
        "energy": float(re.findall(r"^\s*etotal\s+([-0-9.Ee+]+)", out, re.M)[-1]),
        "nk": int(re.findall(r"^\s*nkpt\s+(\d+)", out, re.M)[-1]),
        "iterations": int(steps[-1]) if steps else None,
        "converged": bool(steps) and "not enough SCF cycles to converge" not in out,
        "ngfft": [int(x) for x in ngfft[-1]] if ngfft else None,
        "magnetization": float(mag[-1]) if mag else None,
    }
    if not result["converged"]:
        print(f"  WARNING: ABINIT ({name}) did not converge", file=sys.stderr)
    return result


SOLIDXC_SCRIPT = """
import json, sys, solidxc
s = json.loads(sys.argv[1])
system = solidxc.System(s["lattice"], s["atoms"], pseudo=s["pseudo"], ecut=s["ecut"], kpts=tuple(s["kpts"]),
                        smearing=s.get("smearing"), temperature=s.get("temperature"), magmoms=s.get("magmoms"))
print("fft", *system.fft_size, file=sys.stderr, flush=True)
options = {"maxiter": s["maxiter"]} if s.get("maxiter") else {}
r = solidxc.scf(system, xc=s["xc"], tol=s["tol"], nbands=s["nband"], threads=s["threads"], verbose=True, **options)
print(json.dumps({"energy": r.energy, "nk": len(r.kweights), "iterations": r.iterations, "converged": r.converged,
                  "ngfft": list(r.fft_size), "nspin": r.nspin, "magnetization": list(r.magnetization)}))
"""


def run_solidxc(spec: dict, timeout: float = None) -> dict:
    """Runs one SolidXC SCF in a fresh Python process. spec: lattice, atoms [(el, cart_bohr)],
    pseudo, ecut, kpts, xc, tol, nband, threads and optionally smearing, temperature, magmoms,
    maxiter. Returns wall (s), energy (Ha, free energy with smearing), nk, iterations, converged,
    ngfft and magnetization [total, absolute] (muB; None without spin).

    With `timeout` (s), a run that takes longer is stopped: the result then has "stopped": True,
    the wall time so far, and energy / iterations / magnetization (total only) from the last
    iteration line of the verbose log."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", SOLIDXC_SCRIPT, json.dumps(spec)], capture_output=True,
                              text=True, env=ENV, timeout=timeout)
    except subprocess.TimeoutExpired as stopped:
        wall = time.perf_counter() - start
        log = stopped.stderr.decode() if isinstance(stopped.stderr, bytes) else (stopped.stderr or "")
        lines = re.findall(r"^scf (\d+): E = (\S+) Ha, dE = (\S+), \|drho\| = ([^,\s]+)(?:, eigensolver iterations \d+)?"
                           r"(?:, magnetization = (\S+))?$",
                           log, re.M)
        last = lines[-1] if lines else None
        print(f"  WARNING: SolidXC stopped after {wall:.0f} s (timeout {timeout:g} s)"
              + (f" at iteration {last[0]}: E = {last[1]}, dE = {last[2]}, |drho| = {last[3]}"
                 + (f", M = {last[4]}" if last[4] else "") if last else ""), file=sys.stderr)
        fft = re.findall(r"^fft (\d+) (\d+) (\d+)$", log, re.M)
        return {"wall": wall, "stopped": True, "converged": False, "nk": None,
                "ngfft": [int(x) for x in fft[0]] if fft else None,
                "energy": float(last[1]) if last else float("nan"), "iterations": int(last[0]) if last else None,
                "magnetization": [float(last[4]), float("nan")] if last and last[4] else None,
                "last_dE": float(last[2]) if last else None, "last_drho": float(last[3]) if last else None}
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"solidxc failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["wall"] = wall
    data["stopped"] = False
    if data["nspin"] != 2:
        data["magnetization"] = None
    return data


def check_abinit():
    if shutil.which("abinit") is None:
        sys.exit("abinit not found: apt-get install abinit")


def alternate(runners: dict, repeats: int, label: str = "") -> tuple:
    """Runs each runner (key -> callable returning a dict with "wall") `repeats` times, alternating
    the order (forward on even repeats, backward on odd ones) so that drifts in machine load hit
    every code alike. Returns (median wall per key, last result per key)."""
    keys = list(runners)
    times = {k: [] for k in keys}
    last = {}
    for i in range(repeats):
        for key in keys if i % 2 == 0 else keys[::-1]:
            result = runners[key]()
            times[key].append(result["wall"])
            last[key] = result
            print(f"  {label}run {i + 1}: {key:11s} {result['wall']:8.2f} s", file=sys.stderr, flush=True)
    return {k: statistics.median(v) for k, v in times.items()}, last


ROW_LABELS = (("SolidXC (space group)", "solidxc"), ("ABINIT 9.6.2, default symmetry", "abinit_sym"),
              ("ABINIT 9.6.2, time reversal only", "abinit_tr"))


def rows(med: dict):
    """(label, key) of the modes that ran."""
    return [(label, key) for label, key in ROW_LABELS if key in med]


def print_ratios(med: dict, lower_bound: bool = False):
    """SolidXC / ABINIT wall-time ratios; lower_bound: SolidXC was stopped, the ratios are minima."""
    gt = "> " if lower_bound else ""
    print(f"ratio SolidXC / ABINIT (default symmetry):   {gt}{med['solidxc'] / med['abinit_sym']:.2f}")
    if "abinit_tr" in med:
        print(f"ratio SolidXC / ABINIT (time reversal only): {gt}{med['solidxc'] / med['abinit_tr']:.2f}")

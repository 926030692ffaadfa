"""What the SolidXC-vs-ABINIT benchmarks share: the cases, ABINIT decks, whole-process timing and
peak memory of both codes, alternating repeats and medians, the backward/forward measurement and
the machine description.

Each code runs as a whole process (start-up included), with OMP_NUM_THREADS=1 and
OPENBLAS_NUM_THREADS=1. With n > 1 threads, SolidXC gets `threads=n` (threads over k-points) and
ABINIT runs as `mpirun -np n abinit` (its Debian build has MPI and no OpenMP; with the default
paral_kgb 0 it distributes k-points and spins over the ranks). ABINIT runs with its default
symmetry handling (kptopt 1); SolidXC uses the space group too (its default). On request ABINIT
also runs with time reversal only (kptopt 2, nsym 1).

Peak memory is the peak resident set size (ru_maxrss from wait4, KiB) of the whole process: for
SolidXC the Python interpreter with numpy and the library, for ABINIT the executable; for an MPI
run, the sum over the ranks of each rank's peak (each rank is started through RANK_RSS_WRAPPER,
which reports its child's ru_maxrss), an upper bound of the simultaneous total.
"""
import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PSP_DIR = ROOT / "python" / "tests" / "reference" / "abinit" / "psp"
BOHR_ANGSTROM = 0.52917721092      # PySCF's constant, as the ABINIT reference decks use
ZNUCL = {"C": 6, "Al": 13, "Si": 14, "Ni": 28}
MODES = ("solidxc", "abinit_sym", "abinit_tr")
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
MPIRUN = ["mpirun", "--allow-run-as-root"]


def fcc_lattice(a_bohr: float) -> list:
    """fcc primitive cell a/2 [[0,1,1],[1,0,1],[1,1,0]] (rows, bohr), as the reference decks."""
    h = a_bohr / 2
    return [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]


# ----------------------------------------------------------------------------------------------- cases
@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark input, written for both codes. Geometry in bohr (lattice rows, Cartesian
    positions); `tsmear` (Ha) None means fixed occupations (ABINIT occopt 1), otherwise
    Fermi-Dirac (occopt 3); `magmoms` (muB per atom) None means no spin."""
    name: str
    title: str
    lattice: list
    atoms: list
    psp: str                # file in PSP_DIR, the same parameters as SolidXC's `pseudo` table
    pseudo: str
    xc: str                 # SolidXC name
    ixc: str                # ABINIT's libxc code for the same functional
    ecut: float
    kpts: tuple
    nband: int
    tsmear: float = None
    magmoms: list = None
    abinit_extra: tuple = ()
    tol: float = 1e-10      # Ha: ABINIT toldfe, SolidXC tol
    nstep: int = 200

    def with_settings(self, **changes) -> "Case":
        return dataclasses.replace(self, **changes)

    @property
    def label(self) -> str:
        k = "×".join(map(str, self.kpts))
        smear = f", Fermi-Dirac {self.tsmear:g} Ha" if self.tsmear else ""
        return f"{self.title}, Ecut {self.ecut:g} Ha, {k}{smear}"

    def abinit_deck(self, symmetry: bool = True) -> str:
        k = self.kpts
        settings = [f"ecut {self.ecut}", f"ixc {self.ixc}", f"ngkpt {k[0]} {k[1]} {k[2]}", "nshiftk 1",
                    "shiftk 0 0 0", f"nband {self.nband}", f"nstep {self.nstep}", f"toldfe {self.tol}"]
        settings += [f"occopt 3", f"tsmear {self.tsmear}"] if self.tsmear else ["occopt 1"]
        if self.magmoms:
            settings += ["nsppol 2", "spinat " + "  ".join(f"0.0 0.0 {m!r}" for m in self.magmoms)]
        settings += list(self.abinit_extra)
        return abinit_deck(self.lattice, self.atoms, self.psp, settings, symmetry)

    def solidxc_spec(self, threads: int = 1) -> dict:
        return {"lattice": self.lattice, "atoms": self.atoms, "pseudo": self.pseudo, "ecut": self.ecut,
                "kpts": list(self.kpts), "smearing": "fermi-dirac" if self.tsmear else None,
                "temperature": self.tsmear, "magmoms": self.magmoms, "xc": self.xc, "tol": self.tol,
                "nband": self.nband, "threads": threads, "maxiter": self.nstep}


def _fcc_metal(name, title, element, a_angstrom, ecut, kpts, nband, magmoms=None, extra=()):
    a = a_angstrom / BOHR_ANGSTROM
    return Case(name, title, fcc_lattice(a), [(element, [0.0, 0.0, 0.0])], f"{element}.gth-pbe.psp10", "gth-pbe",
                "pbe", "-101130", ecut, kpts, nband, tsmear=0.01, magmoms=magmoms, abinit_extra=tuple(extra))


def _graphene(ecut, kpts):
    """As python/tests/reference/abinit/run_abinit.py: a = 2.46 A, c = 12 A (cell height, no
    Coulomb truncation), a1 = (a,0,0), a2 = (-a/2, a sqrt3/2, 0), C at (1/3,2/3,1/2), (2/3,1/3,1/2)."""
    a, c = 2.46 / BOHR_ANGSTROM, 12.0 / BOHR_ANGSTROM
    lattice = [[a, 0.0, 0.0], [-a / 2, a * math.sqrt(3) / 2, 0.0], [0.0, 0.0, c]]

    def cart(f):
        x = [sum(f[i] * lattice[i][j] for i in range(3)) for j in range(3)]
        return [0.0 if abs(v) < 1e-12 else v for v in x]
    atoms = [("C", cart([1 / 3, 2 / 3, 0.5])), ("C", cart([2 / 3, 1 / 3, 0.5]))]
    return Case("graphene", "graphene a = 2.46 A, c = 12 A, LDA (PW92), GTH-Pade", lattice, atoms,
                "C.gth-pade.psp10", "gth-pade", "lda,pw", "-001012", ecut, kpts, 8, tsmear=0.01)


def _silicon(ecut, kpts):
    a = 5.431 / BOHR_ANGSTROM
    return Case("si", "Si diamond a = 5.431 A, LDA (PW92), GTH-Pade", fcc_lattice(a),
                [("Si", [0.0, 0.0, 0.0]), ("Si", [a / 4] * 3)], "Si.gth-pade.psp10", "gth-pade", "lda,pw",
                "-001012", ecut, kpts, 8, abinit_extra=("diemac 12",))


def _aluminium(ecut, kpts):
    return _fcc_metal("al", "Al fcc a = 4.05 A, PBE, GTH-PBE q3", "Al", 4.05, ecut, kpts, 6)


def _nickel(ecut, kpts):
    # diemix 0.7: with ABINIT's default mixing the SCF ends in the spin-flipped state (M = -|M|,
    # the same energy); see python/tests/reference/abinit/README.md.
    return _fcc_metal("ni", "Ni fcc a = 3.52 A, spin-polarised PBE, GTH-PBE q18", "Ni", 3.52, ecut, kpts, 14,
                      magmoms=[1.0], extra=("diemix 0.7",))


#: The issue-7 cases at full size, and small versions of them for development (--quick).
CASES = {
    "si": _silicon(20.0, (4, 4, 4)),
    "al": _aluminium(20.0, (8, 8, 8)),
    "ni": _nickel(120.0, (4, 4, 4)),
    "graphene": _graphene(30.0, (9, 9, 1)),
}
QUICK_CASES = {
    "si": _silicon(10.0, (2, 2, 2)),
    "al": _aluminium(10.0, (4, 4, 4)),
    "ni": _nickel(60.0, (2, 2, 2)),        # at Ecut 40 the default FFT grids differ (27³, ABINIT 30³)
    "graphene": _graphene(15.0, (3, 3, 1)),
}


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


# ----------------------------------------------------------------------------------------------- processes
@dataclasses.dataclass
class Process:
    wall: float             # s, from start to exit
    returncode: int
    rss_kib: int            # peak resident set size (ru_maxrss), KiB
    stdout: str
    stderr: str
    timed_out: bool


def run_process(cmd: list, cwd=None, env=None, timeout: float = None) -> Process:
    """Runs cmd, waits with wait4 for its exit status and resource usage. Output goes to temporary
    files (no pipe to fill). With `timeout` (s) the process is killed when it runs longer."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env or ENV, stdout=out, stderr=err, text=True)
        lock, state = threading.Lock(), {"exited": False, "killed": False}

        def kill():
            with lock:
                if not state["exited"]:
                    proc.kill()
                    state["killed"] = True
        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)    # exited, not yet reaped: the pid stays ours
        wall = time.perf_counter() - start
        with lock:
            state["exited"] = True
        if timer:
            timer.cancel()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Process(wall, proc.returncode, usage.ru_maxrss, out.read(), err.read(), state["killed"])


#: Started by mpirun in place of abinit: runs its arguments as a child and writes the child's
#: peak RSS (KiB) to <prefix>.<rank>, so that the ranks' peaks can be summed.
RANK_RSS_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
rank = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0"))
with open(f"{sys.argv[1]}.{rank}", "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_abinit(workdir: pathlib.Path, name: str, deck: str, nproc: int = 1) -> dict:
    """Runs `abinit name.abi` in workdir (which holds the psp file); nproc > 1: under
    `mpirun -np nproc`. Returns wall (s), rss_kib (peak RSS; MPI: summed over ranks), energy
    (etotal, Ha: the free energy with smearing), nk, iterations, converged, ngfft and, for
    nsppol 2, magnetization (ABINIT's "Total magnetization (exact up - dn)")."""
    path = workdir / f"{name}.abi"
    path.write_text(deck)
    for f in list(workdir.glob(f"{name}.abo*")) + list(workdir.glob(f"{name}o_*")) + list(workdir.glob(f"{name}.rss.*")):
        f.unlink()       # ABINIT would otherwise write name.abo0001 ...
    if nproc == 1:
        cmd = ["abinit", path.name]
    else:
        cmd = MPIRUN + ["-np", str(nproc), sys.executable, "-c", RANK_RSS_WRAPPER, f"{name}.rss", "abinit", path.name]
    proc = run_process(cmd, cwd=workdir)
    if proc.returncode != 0:
        sys.exit(f"abinit failed ({name}, {nproc} processes):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    if nproc == 1:
        rss = proc.rss_kib
    else:
        ranks = sorted(workdir.glob(f"{name}.rss.*"))
        if len(ranks) != nproc:
            sys.exit(f"abinit ({name}): {len(ranks)} rank memory reports for {nproc} ranks")
        rss = sum(int(f.read_text()) for f in ranks)
    out = (workdir / f"{name}.abo").read_text()
    steps = re.findall(r"At SCF step\s+(\d+), etot is converged", out)
    ngfft = re.findall(r"^\s*ngfft\s+(\d+)\s+(\d+)\s+(\d+)\s*$", out, re.M)
    mag = re.findall(r"Total magnetization \(exact up - dn\):\s+(\S+)", out)
    mpi = re.findall(r"mpi_nproc:\s+(\d+)", out)
    result = {
        "wall": proc.wall,
        "rss_kib": rss,
        "energy": float(re.findall(r"^\s*etotal\s+([-0-9.Ee+]+)", out, re.M)[-1]),
        "nk": int(re.findall(r"^\s*nkpt\s+(\d+)", out, re.M)[-1]),
        "iterations": int(steps[-1]) if steps else None,
        "converged": bool(steps) and "not enough SCF cycles to converge" not in out,
        "ngfft": [int(x) for x in ngfft[-1]] if ngfft else None,
        "magnetization": float(mag[-1]) if mag else None,
        "mpi_nproc": int(mpi[-1]) if mpi else 1,
    }
    if result["mpi_nproc"] != nproc:
        sys.exit(f"abinit ({name}): asked for {nproc} MPI processes, ABINIT reports {result['mpi_nproc']}")
    if not result["converged"]:
        print(f"  WARNING: ABINIT ({name}) did not converge", file=sys.stderr)
    return result


# The start of every script below: the spec (json, argv[1]) and its solidxc.System.
SYSTEM_PREAMBLE = """
import hashlib, json, sys, time, numpy as np, solidxc
s = json.loads(sys.argv[1])
system = solidxc.System(s["lattice"], s["atoms"], pseudo=s["pseudo"], ecut=s["ecut"], kpts=tuple(s["kpts"]),
                        smearing=s.get("smearing"), temperature=s.get("temperature"), magmoms=s.get("magmoms"))
"""

SOLIDXC_SCRIPT = SYSTEM_PREAMBLE + """
print("fft", *system.fft_size, file=sys.stderr, flush=True)
options = {"maxiter": s["maxiter"]} if s.get("maxiter") else {}
start = time.perf_counter()
r = solidxc.scf(system, xc=s["xc"], tol=s["tol"], nbands=s["nband"], threads=s["threads"], verbose=True, **options)
scf_wall = time.perf_counter() - start
arrays = {"energy": np.array([r.energy]), "eigenvalues": r.eigenvalues, "density": r.density}
if s.get("save"):
    np.savez(s["save"], **arrays)
print(json.dumps({"energy": r.energy, "nk": len(r.kweights), "iterations": r.iterations, "converged": r.converged,
                  "ngfft": list(r.fft_size), "nspin": r.nspin, "magnetization": list(r.magnetization),
                  "scf_wall": scf_wall, "version": solidxc.library_version(),
                  "sha256": {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in arrays.items()}}))
"""
ITERATION_LINE = re.compile(r"^scf (\d+): E = (\S+) Ha, dE = (\S+), \|drho\| = ([^,\s]+)(?:, eigensolver iterations \d+)?"
                            r"(?:, magnetization = (\S+))?$", re.M)


def run_solidxc(spec: dict, timeout: float = None) -> dict:
    """Runs one SolidXC SCF in a fresh Python process. spec: lattice, atoms [(el, cart_bohr)],
    pseudo, ecut, kpts, xc, tol, nband, threads and optionally smearing, temperature, magmoms,
    maxiter, save (an .npz path for energy, eigenvalues and density). Returns wall (s, the whole
    process), scf_wall (s, the scf() call), rss_kib (peak RSS), energy (Ha, free energy with
    smearing), nk, iterations, converged, ngfft, magnetization [total, absolute] (muB; None
    without spin) and sha256 of energy, eigenvalues and density.

    With `timeout` (s), a run that takes longer is stopped: the result then has "stopped": True,
    the wall time so far, and energy / iterations / magnetization (total only) from the last
    iteration line of the verbose log."""
    proc = run_process([sys.executable, "-c", SOLIDXC_SCRIPT, json.dumps(spec)], timeout=timeout)
    if proc.timed_out:
        last = (ITERATION_LINE.findall(proc.stderr) or [None])[-1]
        print(f"  WARNING: SolidXC stopped after {proc.wall:.0f} s (timeout {timeout:g} s)"
              + (f" at iteration {last[0]}: E = {last[1]}, dE = {last[2]}, |drho| = {last[3]}"
                 + (f", M = {last[4]}" if last[4] else "") if last else ""), file=sys.stderr)
        fft = re.findall(r"^fft (\d+) (\d+) (\d+)$", proc.stderr, re.M)
        return {"wall": proc.wall, "scf_wall": None, "rss_kib": proc.rss_kib, "stopped": True, "converged": False,
                "nk": None, "ngfft": [int(x) for x in fft[0]] if fft else None,
                "energy": float(last[1]) if last else float("nan"), "iterations": int(last[0]) if last else None,
                "magnetization": [float(last[4]), float("nan")] if last and last[4] else None,
                "last_dE": float(last[2]) if last else None, "last_drho": float(last[3]) if last else None}
    if proc.returncode != 0:
        sys.exit(f"solidxc failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data.update(wall=proc.wall, rss_kib=proc.rss_kib, stopped=False)
    if data["nspin"] != 2:
        data["magnetization"] = None
    return data


BACKWARD_SCRIPT = SYSTEM_PREAMBLE + """

def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out

for repeat in range(s["repeats"]):
    forward, result = timed(lambda: solidxc.scf(system, xc=s["xc"], tol=s["tol"], nbands=s["nband"],
                                                threads=s["threads"], maxiter=s["maxiter"]))
    energy, _ = timed(lambda: result.backward(1.0))
    rng = np.random.default_rng(0)
    reference = result.density * (1 + 0.1 * rng.standard_normal(result.density.shape))
    density, adj = timed(lambda: result.backward(0.0, 2 * (result.density - reference) * result.dv, tol=1e-10))
    print(json.dumps({"forward": forward, "backward_energy": energy, "backward_density": density,
                      "gmres": adj.iterations, "residual": adj.residual}), flush=True)
"""


def run_backward(spec: dict, repeats: int, progress: str = "") -> dict:
    """Forward SCF, then the backward pass for an energy loss (dL/dE = 1: no response solve) and
    for a density loss L = sum((rho - rho_ref)^2) dv with a reference density that lacks the
    crystal's symmetry (so the backward pass symmetrises dL/drho), Dyson solve to relative residual
    1e-10; `repeats` times in one fresh process (in-process times: the library is loaded once).
    Returns the per-repeat times and their medians (s), the ratios of the medians, and the last
    GMRES iteration count and residual."""
    proc = run_process([sys.executable, "-c", BACKWARD_SCRIPT, json.dumps(dict(spec, repeats=repeats))])
    if proc.returncode != 0:
        sys.exit(f"solidxc backward failed:\n{proc.stderr[-3000:]}")
    runs = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    for i, run in enumerate(runs):
        print(f"  {progress}backward run {i + 1}: forward {run['forward']:.2f} s, energy loss "
              f"{run['backward_energy']:.3f} s, density loss {run['backward_density']:.2f} s", file=sys.stderr, flush=True)
    med = {key: statistics.median(r[key] for r in runs) for key in ("forward", "backward_energy", "backward_density")}
    return dict(runs=runs, median=med, energy_ratio=med["backward_energy"] / med["forward"],
                density_ratio=med["backward_density"] / med["forward"], gmres=runs[-1]["gmres"],
                residual=runs[-1]["residual"])


SPEEDUP_SCRIPT = SYSTEM_PREAMBLE + """
def run(threads):
    start = time.perf_counter()
    solidxc.scf(system, xc=s["xc"], tol=s["tol"], nbands=s["nband"], threads=threads)
    return time.perf_counter() - start
run(1), run(2)  # untimed: the library's first calls
for repeat in range(s["repeats"]):
    order = (1, 2) if repeat % 2 == 0 else (2, 1)
    print(json.dumps({str(t): run(t) for t in order}), flush=True)
"""


def run_speedup(spec: dict, repeats: int, progress: str = "") -> dict:
    """The scf() call with 1 and with 2 threads, alternating, `repeats` times in one process after
    one untimed call of each: the median times and their ratio. One process and more repeats
    than the whole-process runs: on a 2-core machine the spread of 3 process runs is larger than
    the differences the 2-thread target is about (ABINIT's own speed-up on the same Al input
    measured 1.14 and 1.50 in two runs of the suite)."""
    proc = run_process([sys.executable, "-c", SPEEDUP_SCRIPT, json.dumps(dict(spec, repeats=repeats))])
    if proc.returncode != 0:
        sys.exit(f"solidxc speed-up run failed:\n{proc.stderr[-3000:]}")
    runs = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    times = {t: [r[str(t)] for r in runs] for t in (1, 2)}
    for i, r in enumerate(runs):
        print(f"  {progress}scf() run {i + 1}: 1 thread {r['1']:.3f} s, 2 threads {r['2']:.3f} s", file=sys.stderr, flush=True)
    med = {t: statistics.median(v) for t, v in times.items()}
    return dict(times=times, median=med, speedup=med[1] / med[2])


def check_abinit():
    if shutil.which("abinit") is None:
        sys.exit("abinit not found: apt-get install abinit")


def alternate(runners: dict, repeats: int, label: str = "") -> tuple:
    """Runs each runner (key -> callable returning a dict with "wall") `repeats` times, alternating
    the order (forward on even repeats, backward on odd ones) so that drifts in machine load hit
    every code alike. Prints each run (label, key, repeat, wall, peak RSS, SCF iterations) to
    stderr. Returns (median wall per key, last result per key, all results per key)."""
    keys = list(runners)
    runs = {k: [] for k in keys}
    for i in range(repeats):
        for key in keys if i % 2 == 0 else keys[::-1]:
            result = runners[key]()
            runs[key].append(result)
            extra = ""
            if result.get("rss_kib"):
                extra += f"  {result['rss_kib'] / 1024:7.1f} MiB"
            if result.get("iterations") is not None:
                extra += f"  {result['iterations']:3d} SCF it."
            print(f"  {label}{key:12s} run {i + 1}/{repeats}: {result['wall']:8.2f} s{extra}", file=sys.stderr, flush=True)
    med = {k: statistics.median(r["wall"] for r in v) for k, v in runs.items()}
    return med, {k: v[-1] for k, v in runs.items()}, runs


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


# ----------------------------------------------------------------------------------------------- machine
def _command(cmd: list) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def package_version(name: str) -> str:
    """The Debian package's version (dpkg-query), or "?"."""
    return _command(["dpkg-query", "-W", "-f=${Version}", name]) or "?"


def load_average() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict:
    """CPU model and flags of note, cores, memory, OS and the versions of the libraries both codes use."""
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
    model = (re.findall(r"^model name\s*:\s*(.*)$", cpuinfo, re.M) or ["?"])[0]
    flags = set((re.findall(r"^flags\s*:\s*(.*)$", cpuinfo, re.M) or [""])[0].split())
    mhz = re.findall(r"^cpu MHz\s*:\s*(\S+)", cpuinfo, re.M)
    free = _command(["free", "-h"]).splitlines()
    os_name = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', pathlib.Path("/etc/os-release").read_text(), re.M)).get(
        "PRETTY_NAME", "?") if pathlib.Path("/etc/os-release").exists() else "?"
    abinit = _command(["abinit", "-b"])
    return {
        "cpu": model,
        "cpu_mhz": mhz[0] if mhz else "?",
        "simd": " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags),
        "nproc": _command(["nproc"]),
        "memory": next((line for line in free if line.startswith("Mem:")), "?"),
        "os": f"{os_name}, Linux {platform.release()}",
        "python": platform.python_version(),
        "abinit": _command(["abinit", "--version"]) or "?",
        "abinit_build": ", ".join(f"{k.strip()} {v.strip() or '-'}" for k, v in re.findall(
            r"^\s*(LINALG flavor|FFT flavor|openMP support)\s*:(.*)$", abinit, re.M)),
        "openblas": package_version("libopenblas0"),
        "fftw": package_version("libfftw3-double3"),
        "libxc": package_version("libxc9") if package_version("libxc9") != "?" else package_version("libxc-dev"),
        "openmpi": package_version("openmpi-bin"),
        "solidxc_commit": _command(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "solidxc_library": os.environ.get("SOLIDXC_LIBRARY", "(the package's libsolidxc.so)"),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }

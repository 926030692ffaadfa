#!/usr/bin/env python3
"""The whole benchmark suite of issue 7 in one command: SolidXC against ABINIT 9.6.2 on identical
inputs, on this machine, in one run, alternating, each case repeated and the median taken.

Cases (bench/common.py CASES; the same decks, pseudopotential parameters and FFT grids in both codes):
  si        Si diamond, LDA (PW92), GTH-Pade, Ecut 20 Ha, 4×4×4, 8 bands
  al        Al fcc, PBE, GTH-PBE, Ecut 20 Ha, 8×8×8, Fermi-Dirac 0.01 Ha, 6 bands
  ni        Ni fcc, spin-polarised PBE, GTH-PBE q18, Ecut 120 Ha, 4×4×4, Fermi-Dirac 0.01 Ha, 14 bands
  graphene  graphene (a = 2.46 A, c = 12 A), LDA (PW92), GTH-Pade, Ecut 30 Ha, 9×9×1,
            Fermi-Dirac 0.01 Ha, 8 bands (the geometry and smearing of the ABINIT reference decks)

For each case: whole-process wall time with 1 and 2 threads (SolidXC `threads`; ABINIT serial and
`mpirun -np 2`, k-point parallel), peak RSS, SCF iterations, whether SolidXC's energy, eigenvalues
and density are bitwise the same with 1 and 2 threads, and SolidXC's backward/forward time ratios
for an energy loss and a density loss (bench/common.py run_backward). The 2-thread speed-up target
(Al) is measured on the scf() call, 1 and 2 threads alternating 9 times in one process
(bench/common.py run_speedup). Then the scaling scans
(bench/scaling.py): time against k-points (Al) and against Ecut (Si), log-log slopes and plots.
Energy tolerance 1e-10 Ha in both codes; ABINIT kptopt 1 (its default symmetry handling).

Writes RESULTS.md (machine, date, load, tables, targets) into the block between
<!-- suite:begin --> and <!-- suite:end --> of bench/RESULTS.md, keeping the rest of the file, and
the plots bench/scaling_kpoints.png and bench/scaling_ecut.png. --quick runs small versions of
every case once and writes to /tmp/solidxc-bench-quick/ unless --output-dir says otherwise.
Progress goes to stderr.

Usage: python3 bench/run_all.py [--quick] [--repeats 3] [--cases si al ni graphene]
                                [--skip-backward] [--skip-scaling] [--output-dir DIR]
Needs: abinit and mpirun (apt-get install abinit openmpi-bin), numpy, matplotlib, and solidxc
importable (pip install ., or PYTHONPATH=python SOLIDXC_LIBRARY=.../libsolidxc.so); the
environment is passed on to every process.
"""
import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import scaling  # noqa: E402

BENCH = pathlib.Path(__file__).resolve().parent
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
THREADS = (1, 2)
SPEEDUP_CASE = "al"
SPEEDUP_REPEATS = 9             # in-process scf() calls per thread count for the speed-up target
ENERGY_WARN_PER_ATOM = 1e-5     # Ha: beyond this the two codes did not solve the same problem


def solidxc_key(threads):
    return f"solidxc {threads}thr"


def abinit_key(threads):
    return f"abinit {threads}proc"


def compare_runs(a: pathlib.Path, b: pathlib.Path) -> dict:
    """Energy, eigenvalues and density of two saved SolidXC results: bitwise equal, or the largest
    absolute difference of each."""
    x, y = np.load(a), np.load(b)
    out = {}
    for key in ("energy", "eigenvalues", "density"):
        same = x[key].shape == y[key].shape and x[key].tobytes() == y[key].tobytes()
        out[key] = 0.0 if same else (float(np.max(np.abs(x[key] - y[key]))) if x[key].shape == y[key].shape
                                     else float("inf"))
    out["identical"] = all(v == 0.0 for v in out.values())
    return out


def run_case(case, repeats: int, timeout: float) -> dict:
    """Both codes with 1 and 2 threads, alternating; medians; the 1- vs 2-thread comparison."""
    print(f"{case.name}: {case.label}; load {common.load_average()}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        shutil.copy(common.PSP_DIR / case.psp, work / case.psp)
        # One untimed run first, so that the FFT plans this case needs are in SolidXC's wisdom file
        # (measured once per machine and grid; README "FFT plans and reproducible bits").
        planning = common.run_solidxc(case.solidxc_spec(1), timeout=timeout)
        print(f"  {case.name} solidxc planning run (untimed): {planning['wall']:.2f} s", file=sys.stderr, flush=True)
        runners = {}
        for t in THREADS:
            spec = dict(case.solidxc_spec(t), save=str(work / f"solidxc_{t}.npz"))
            runners[solidxc_key(t)] = lambda spec=spec: common.run_solidxc(spec, timeout=timeout)
            runners[abinit_key(t)] = lambda t=t: common.run_abinit(work, f"{case.name}_{t}", case.abinit_deck(True), t)
        med, last, runs = common.alternate(runners, repeats, label=f"{case.name} ")
        stopped = any(r.get("stopped") for t in THREADS for r in runs[solidxc_key(t)])
        threads = None if stopped else compare_runs(work / "solidxc_1.npz", work / "solidxc_2.npz")
    repeatable = {t: len({str(r.get("sha256")) for r in runs[solidxc_key(t)]}) == 1 for t in THREADS}
    return {"case": case, "median": med, "last": last, "runs": runs, "stopped": stopped, "threads": threads,
            "repeatable": repeatable, "planning_wall": planning["wall"]}


# ----------------------------------------------------------------------------------------------- report
def mib(kib):
    return kib / 1024


def fmt_ratio(x, limit=None, lower_bound=False):
    if x is None:
        return "–"
    s = f"{'> ' if lower_bound else ''}{x:.2f}"
    return f"**{s}**" if limit is not None and x > limit else s


def verdict(ok):
    return "met" if ok else "**not met**"


def case_table(results: list) -> list:
    head = ("| case | k-points SolidXC / ABINIT | FFT | threads | SolidXC (s) | ABINIT (s) | ratio | "
            "SCF it. SolidXC / ABINIT | peak RSS SolidXC / ABINIT (MiB) | RSS ratio | ΔE (Ha) | M SolidXC / ABINIT (μB) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        case, med, last = r["case"], r["median"], r["last"]
        for t in THREADS:
            s, a = last[solidxc_key(t)], last[abinit_key(t)]
            ms, ma = med[solidxc_key(t)], med[abinit_key(t)]
            fft = "×".join(map(str, s["ngfft"])) if s["ngfft"] else "?"
            if s["ngfft"] != a["ngfft"]:
                fft += f" (ABINIT {'×'.join(map(str, a['ngfft'] or []))})"
            its = f"{s['iterations'] if s['iterations'] is not None else '–'} / {a['iterations']}"
            de = abs(s["energy"] - a["energy"])
            bad = de > ENERGY_WARN_PER_ATOM * len(case.atoms) or s["ngfft"] != a["ngfft"]
            m = (f"{s['magnetization'][0]:.3f} / {a['magnetization']:.3f}" if case.magmoms and s["magnetization"]
                 and a["magnetization"] is not None else "–")
            lines.append(f"| {case.name} | {s['nk'] if s['nk'] is not None else '–'} / {a['nk']} | {fft} | {t} | "
                         f"{'> ' if s.get('stopped') else ''}{ms:.2f} | {ma:.2f} | "
                         f"{fmt_ratio(ms / ma, 1.0, s.get('stopped'))} | {its} | "
                         f"{mib(s['rss_kib']):.0f} / {mib(a['rss_kib']):.0f} | "
                         f"{fmt_ratio(s['rss_kib'] / a['rss_kib'], 1.0)} | {'**' if bad else ''}{de:.1e}{'**' if bad else ''} | {m} |")
    return lines


def mismatches(results: list) -> list:
    """Warnings for cases where the two codes did not compute the same thing."""
    lines = []
    for r in results:
        case = r["case"]
        for t in THREADS:
            s, a = r["last"][solidxc_key(t)], r["last"][abinit_key(t)]
            if s.get("stopped"):
                continue
            if s["ngfft"] != a["ngfft"]:
                lines.append(f"**Warning**: {case.name}, {t} thread(s): the FFT grids differ (SolidXC {s['ngfft']}, "
                             f"ABINIT {a['ngfft']}).")
            de = abs(s["energy"] - a["energy"]) / len(case.atoms)
            if de > ENERGY_WARN_PER_ATOM:
                lines.append(f"**Warning**: {case.name}, {t} thread(s): the energies differ by {de:.1e} Ha/atom "
                             f"(> {ENERGY_WARN_PER_ATOM:g}): a different grid, a different (e.g. magnetic) state, "
                             "or a settings mismatch; the times compare different calculations.")
    return lines + [""] if lines else []


def scf_call_speedup(r: dict) -> float | None:
    """Median scf()-call time with 1 thread over that with 2 (None if a run was stopped): the
    parallel part of the work, without the process start (Python, numpy, the library, the system
    set-up), which one training process pays once for many SCFs."""
    walls = [[run.get("scf_wall") for run in r["runs"][solidxc_key(t)]] for t in THREADS]
    if any(w is None for ws in walls for w in ws):
        return None
    return statistics.median(walls[0]) / statistics.median(walls[1])


def threads_table(results: list) -> list:
    lines = ["| case | speed-up SolidXC, whole process (1 → 2 threads) | speed-up SolidXC, scf() call | "
             "speed-up ABINIT (1 → 2 processes) | "
             "SolidXC 1 vs 2 threads: energy, eigenvalues, density | same bits on every repeat (1 / 2 threads) |",
             "|---|---|---|---|---|---|"]
    for r in results:
        med = r["median"]
        su = med[solidxc_key(1)] / med[solidxc_key(2)]
        sc = scf_call_speedup(r)
        sa = med[abinit_key(1)] / med[abinit_key(2)]
        c = r["threads"]
        if c is None:
            same = "– (a run was stopped)"
        elif c["identical"]:
            same = "bitwise identical"
        else:
            same = "**differ**: max |Δ| " + ", ".join(f"{k} {c[k]:.1e}" for k in ("energy", "eigenvalues", "density"))
        rep = " / ".join("yes" if r["repeatable"][t] else "**no**" for t in THREADS)
        lines.append(f"| {r['case'].name} | {su:.2f} | {'–' if sc is None else f'{sc:.2f}'} | {sa:.2f} | {same} | {rep} |")
    return lines


def speedup_lines(speedup: dict) -> list:
    if speedup is None:
        return []
    t1, t2 = speedup["times"][1], speedup["times"][2]
    return [f"{SPEEDUP_CASE}, the scf() call in one process, 1 and 2 threads alternating, {len(t1)} repeats after one "
            f"untimed call of each (bench/common.py run_speedup): medians {speedup['median'][1]:.3f} s and "
            f"{speedup['median'][2]:.3f} s, speed-up **{speedup['speedup']:.2f}**; "
            f"1 thread {min(t1):.3f}–{max(t1):.3f} s, 2 threads {min(t2):.3f}–{max(t2):.3f} s.", ""]


def backward_table(backward: dict) -> list:
    lines = ["| case | forward (s) | backward, energy loss (s) | backward, density loss (s) | energy ratio | "
             "density ratio | GMRES it. | residual |", "|---|---|---|---|---|---|---|---|"]
    for name, b in backward.items():
        m = b["median"]
        lines.append(f"| {name} | {m['forward']:.2f} | {m['backward_energy']:.3f} | {m['backward_density']:.2f} | "
                     f"{fmt_ratio(b['energy_ratio'], 0.05)} | {fmt_ratio(b['density_ratio'], 1.0)} | "
                     f"{b['gmres']} | {b['residual']:.1e} |")
    return lines


def scaling_tables(sc: dict, plot_names: dict) -> list:
    k, e = sc["kpoints"], sc["ecut"]
    lines = [f"**Time against k-points** ({k['case'].split(', Ecut')[0]}, Ecut {k['points'][0]['ecut']:g} Ha, "
             f"k×k×k), one thread; plot: [{plot_names['kpoints']}]({plot_names['kpoints']})", "",
             "| k | irreducible k (SolidXC / ABINIT) | SCF it. (SolidXC / ABINIT) | SolidXC scf() (s) | "
             "per iteration (s) | SolidXC process (s) | ABINIT process (s) |", "|---|---|---|---|---|---|---|"]
    for p in k["points"]:
        lines.append(f"| {p['kpts'][0]} | {p['nk']} / {p['abinit_nk']} | {p['iterations']} / {p['abinit_iterations']} | "
                     f"{p['solidxc_scf']:.2f} | {p['solidxc_per_iteration']:.3f} | {p['solidxc_process']:.2f} | "
                     f"{p['abinit_process']:.2f} |")
    lines += ["", "| log-log slope of | against irreducible k | against k³ |", "|---|---|---|"]
    for name, (label, _) in scaling.SERIES.items():
        lines.append(f"| {label} | {k['slopes_nk'][name]:.3f} | {k['slopes_total_k'][name]:.3f} |")
    lines += ["", f"**Time against Ecut** ({e['case'].split(', Ecut')[0]}, "
              f"{'×'.join(map(str, e['points'][0]['kpts']))}), one thread; plot: "
              f"[{plot_names['ecut']}]({plot_names['ecut']})", "",
              "| Ecut (Ha) | SCF it. (SolidXC / ABINIT) | SolidXC scf() (s) | per iteration (s) | "
              "SolidXC process (s) | ABINIT process (s) |", "|---|---|---|---|---|---|"]
    for p in e["points"]:
        lines.append(f"| {p['ecut']:g} | {p['iterations']} / {p['abinit_iterations']} | {p['solidxc_scf']:.2f} | "
                     f"{p['solidxc_per_iteration']:.3f} | {p['solidxc_process']:.2f} | {p['abinit_process']:.2f} |")
    lines += ["", "| log-log slope against Ecut of | slope |", "|---|---|"]
    for name, (label, _) in scaling.SERIES.items():
        lines.append(f"| {label} | {e['slopes'][name]:.3f} |")
    return lines


def targets(results: list, backward: dict, sc: dict, speedup: dict = None) -> list:
    rows = []
    for r in results:
        med, last, name = r["median"], r["last"], r["case"].name
        for t in THREADS:
            ratio = med[solidxc_key(t)] / med[abinit_key(t)]
            rows.append((f"{name}, {t} thread{'s' if t > 1 else ''}: wall time ≤ 1.0× ABINIT", f"{ratio:.2f}",
                         ratio <= 1.0 and not r["stopped"]))
        its, ita = last[solidxc_key(1)]["iterations"], last[abinit_key(1)]["iterations"]
        rows.append((f"{name}: SCF iterations ≤ ABINIT's", f"{its} / {ita}",
                     its is not None and ita is not None and its <= ita))
        for t in THREADS:
            rs, ra = last[solidxc_key(t)]["rss_kib"], last[abinit_key(t)]["rss_kib"]
            rows.append((f"{name}, {t} thread{'s' if t > 1 else ''}: peak memory ≤ ABINIT's",
                         f"{mib(rs):.0f} / {mib(ra):.0f} MiB", rs <= ra))
        c = r["threads"]
        rows.append((f"{name}: bitwise identical with 1 and 2 threads",
                     "–" if c is None else ("identical" if c["identical"] else "differ"), bool(c and c["identical"])))
    for name, b in backward.items():
        rows.append((f"{name}: density-loss backward ≤ 1.0× forward", f"{b['density_ratio']:.2f}",
                     b["density_ratio"] <= 1.0))
        rows.append((f"{name}: energy-loss backward ≤ 0.05× forward", f"{b['energy_ratio']:.3f}",
                     b["energy_ratio"] <= 0.05))
    if sc:
        s = sc["kpoints"]["slopes_nk"]["scf"]
        rows.append(("time linear in the irreducible k-points (scf() slope 1.0 ± 0.1)", f"{s:.3f}", abs(s - 1.0) <= 0.1))
    for r in results:
        if r["case"].name == SPEEDUP_CASE and speedup is not None:
            su = r["median"][solidxc_key(1)] / r["median"][solidxc_key(2)]
            sc = scf_call_speedup(r)
            rows.append((f"{SPEEDUP_CASE}: 2-thread speed-up ≥ 1.7 (scf() call, {SPEEDUP_REPEATS} alternating repeats "
                         "in one process; in brackets the 3 process runs: scf() call, whole process)",
                         f"{speedup['speedup']:.2f} ({'–' if sc is None else f'{sc:.2f}'}, {su:.2f})",
                         speedup["speedup"] >= 1.7))
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {verdict(ok)} |" for what, value, ok in rows]
    met = sum(ok for _, _, ok in rows)
    return [f"{met} of {len(rows)} targets met.", ""] + lines


def raw_runs(results: list) -> list:
    lines = ["<details><summary>Every run (wall s / peak RSS MiB / SCF iterations, in the order of the repeats)"
             "</summary>", "", "| case | run | times |", "|---|---|---|"]
    for r in results:
        for key, runs in r["runs"].items():
            lines.append(f"| {r['case'].name} | {key} | " + ", ".join(
                f"{x['wall']:.2f} / {mib(x['rss_kib']):.0f} / {x['iterations']}" for x in runs) + " |")
    return lines + ["", "</details>"]


def report(args, info: dict, load_start: str, load_end: str, elapsed: float, results: list, backward: dict,
           sc: dict, plot_names: dict, speedup: dict = None) -> str:
    repeats = args.repeats
    lines = [
        BEGIN,
        "<!-- Generated by bench/run_all.py from its measurements; edits here are overwritten. -->",
        "",
        f"## The suite: `python3 bench/run_all.py{' --quick' if args.quick else ''}"
        f"{f' --repeats {repeats}' if repeats != (1 if args.quick else 3) else ''}`",
        "",
        f"Date: {info['date']}. The suite took {elapsed / 60:.1f} min. "
        f"Load average (1, 5, 15 min) at the start: {load_start}; at the end: {load_end}.",
        "",
        f"Machine: {info['cpu']} ({info['cpu_mhz']} MHz; {info['simd']}), {info['nproc']} cores, "
        f"memory `{info['memory']}` (free -h); {info['os']}; Python {info['python']}.",
        f"ABINIT {info['abinit']} (Debian package; {info['abinit_build']}), OpenMPI {info['openmpi']}, "
        f"OpenBLAS {info['openblas']}, FFTW {info['fftw']}, libxc {info['libxc']}. "
        f"SolidXC {info.get('solidxc_version', '?')}, bench at commit {info['solidxc_commit']}, "
        f"library `{info['solidxc_library']}`.",
        "",
        f"Method: whole processes timed (start-up included), the runs of a case alternate (forward order on odd "
        f"repeats, reversed on even ones), median of {repeats} repeat{'s' if repeats > 1 else ''}. "
        "OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1. 1 thread: SolidXC `threads=1`, ABINIT serial; 2 threads: "
        "SolidXC `threads=2` (k-points over threads), ABINIT `mpirun --allow-run-as-root -np 2 abinit` (k-point "
        "parallel MPI: the Debian build has no OpenMP). Both codes use the space group (ABINIT kptopt 1, its "
        "default), the same FFT grid, explicit nband, energy tolerance 1e-10 Ha. Peak RSS: ru_maxrss of the whole "
        "process (SolidXC: Python with numpy and the library); ABINIT with 2 processes: the sum of the two ranks' "
        "peaks. ΔE: |E(SolidXC) − E(ABINIT)|, the free energy with smearing. Ratios above a target are in bold.",
        "",
        "FFT plans: SolidXC measures its FFTW plans once per machine and grid and keeps them in its wisdom file "
        "(README, \"FFT plans and reproducible bits\"); one untimed SolidXC run before each case's timed runs makes "
        "any plan the file lacks. That run's wall time (with any planning): "
        + ", ".join(f"{r['case'].name} {r['planning_wall']:.2f} s" for r in results) + ".",
        "",
    ]
    if args.quick:
        lines += ["**Quick mode**: small Ecut and k-grids, one repeat: a check of the tool, not a measurement.", ""]
    if results:
        lines += ["### Wall time, SCF iterations, peak memory", "", *[f"- {r['case'].name}: {r['case'].label}"
                                                                      for r in results], "", *case_table(results), "",
                  *mismatches(results),
                  "### Two threads", "", *threads_table(results), "", *speedup_lines(speedup)]
    if backward:
        lines += ["### Backward pass against forward SCF (SolidXC, in-process, one thread)", "",
                  "Energy loss: dL/dE = 1 (no response solve). Density loss: sum((ρ − ρ_ref)²) dv with a "
                  "non-symmetric reference, Dyson solve to relative residual 1e-10.", "", *backward_table(backward), ""]
    if sc:
        lines += ["### Scaling", "", *scaling_tables(sc, plot_names), ""]
    lines += ["### Targets", "", *targets(results, backward, sc, speedup), ""]
    if results:
        lines += [*raw_runs(results), ""]
    lines.append(END)
    return "\n".join(lines)


def write_results(path: pathlib.Path, block: str):
    """Replaces the marked block of `path`, or puts it below the title (the earlier text stays below)."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        title, _, rest = old.partition("\n")
        new = f"{title}\n\n{block}\n\n## Earlier measurements\n{rest}" if rest.strip() else f"{title}\n\n{block}\n"
    path.write_text(new)


def solidxc_version() -> str:
    proc = common.run_process([sys.executable, "-c", "import solidxc; print(solidxc.library_version())"])
    if proc.returncode != 0:
        sys.exit(f"solidxc cannot be imported:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small Ecut and k-grids, 1 repeat (development)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--cases", nargs="+", choices=list(common.CASES), default=list(common.CASES))
    parser.add_argument("--skip-backward", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--output-dir", type=pathlib.Path, default=None,
                        help="where RESULTS.md and the plots go (default: bench/; --quick: /tmp/solidxc-bench-quick)")
    parser.add_argument("--solidxc-timeout", type=float, default=1800.0,
                        help="stop a SolidXC SCF after this many seconds (its time is then a lower bound)")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    out = args.output_dir or (pathlib.Path("/tmp/solidxc-bench-quick") if args.quick else BENCH)
    out.mkdir(parents=True, exist_ok=True)
    common.check_abinit()
    if shutil.which("mpirun") is None:
        sys.exit("mpirun not found: apt-get install openmpi-bin")
    start, load_start = time.perf_counter(), common.load_average()
    info = common.machine()
    info["solidxc_version"] = solidxc_version()
    print(f"bench/run_all.py{' --quick' if args.quick else ''}: {args.repeats} repeat(s), cases {' '.join(args.cases)}; "
          f"load {load_start}; {info['cpu']}, {info['nproc']} cores", file=sys.stderr, flush=True)
    cases = common.QUICK_CASES if args.quick else common.CASES
    results = [run_case(cases[name], args.repeats, args.solidxc_timeout) for name in args.cases]
    speedup = None
    if SPEEDUP_CASE in args.cases:
        print(f"{SPEEDUP_CASE}: scf() with 1 and 2 threads in one process, {SPEEDUP_REPEATS} alternating repeats; "
              f"load {common.load_average()}", file=sys.stderr, flush=True)
        speedup = common.run_speedup(cases[SPEEDUP_CASE].solidxc_spec(1), SPEEDUP_REPEATS, progress=f"{SPEEDUP_CASE} ")
    backward = {}
    if not args.skip_backward:
        for name in args.cases:
            print(f"{name}: backward against forward; load {common.load_average()}", file=sys.stderr, flush=True)
            backward[name] = common.run_backward(cases[name].solidxc_spec(1), args.repeats, progress=f"{name} ")
    sc = None if args.skip_scaling else scaling.run(args.quick, args.repeats, out)
    plot_names = {"kpoints": "scaling_kpoints.png", "ecut": "scaling_ecut.png"}
    block = report(args, info, load_start, common.load_average(), time.perf_counter() - start, results, backward,
                   sc, plot_names, speedup)
    write_results(out / "RESULTS.md", block)
    print(block)
    print(f"wrote {out / 'RESULTS.md'}" + ("" if sc is None else f", {sc['kpoints']['plot']}, {sc['ecut']['plot']}"),
          file=sys.stderr)


if __name__ == "__main__":
    main()

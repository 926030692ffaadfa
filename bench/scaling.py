#!/usr/bin/env python3
"""How SolidXC's time grows with the number of k-points and with Ecut, with ABINIT alongside.

- k-points: Al fcc, PBE, Ecut 20 Ha, Fermi-Dirac 0.01 Ha, Gamma-centred k×k×k grids, k = 4, 6, 8,
  10, 12; slopes of log t against log(irreducible k-points) and against log(k³).
- Ecut: Si diamond, LDA, 4×4×4, Ecut = 10, 15, 20, 30, 40 Ha; slope of log t against log Ecut
  (the plane-wave count grows as Ecut^1.5, an FFT's cost as N log N, the subspace work as
  bands² × plane waves).

One thread (one ABINIT process); each point alternates the two codes and takes the median of
the repeats. SolidXC's times: the whole process (start-up included) and the scf() call alone
(measured inside the process; the target "linear in the number of k-points" is read from this
one), also divided by the SCF iteration count (the iteration count can change with the grid).
ABINIT: the whole process. Plots (log-log, matplotlib Agg) go to scaling_kpoints.png and
scaling_ecut.png.

Usage: python3 bench/scaling.py [--quick] [--repeats 3] [--plot-dir bench]
(bench/run_all.py runs this as part of the suite.)
"""
import argparse
import math
import pathlib
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

K_GRIDS, QUICK_K_GRIDS = (4, 6, 8, 10, 12), (2, 3, 4)
ECUTS, QUICK_ECUTS = (10.0, 15.0, 20.0, 30.0, 40.0), (6.0, 8.0, 10.0)
#: y quantity -> (label in tables and plots, key in a point)
SERIES = {
    "scf": ("SolidXC scf() call", "solidxc_scf"),
    "per_iteration": ("SolidXC scf() per SCF iteration", "solidxc_per_iteration"),
    "process": ("SolidXC whole process", "solidxc_process"),
    "abinit": ("ABINIT whole process", "abinit_process"),
}


def slope(x: list, y: list) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(v) for v in x], [math.log(v) for v in y]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def measure(cases: list, repeats: int, label: str) -> list:
    """One point per case: alternating SolidXC and ABINIT (one thread), medians of the repeats."""
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for case in cases:
            shutil.copy(common.PSP_DIR / case.psp, work / case.psp)
            tag = f"{label} Ecut {case.ecut:g} k {'x'.join(map(str, case.kpts))} "
            runners = {"solidxc": lambda: common.run_solidxc(case.solidxc_spec(1)),
                       "abinit": lambda: common.run_abinit(work, f"{case.name}_scaling", case.abinit_deck(True))}
            med, last, runs = common.alternate(runners, repeats, label=tag)
            s = runs["solidxc"]
            points.append({
                "ecut": case.ecut, "kpts": list(case.kpts), "total_k": math.prod(case.kpts),
                "nk": last["solidxc"]["nk"], "abinit_nk": last["abinit"]["nk"],
                "iterations": last["solidxc"]["iterations"], "abinit_iterations": last["abinit"]["iterations"],
                "solidxc_process": med["solidxc"], "abinit_process": med["abinit"],
                "solidxc_scf": statistics.median(r["scf_wall"] for r in s),
                "solidxc_per_iteration": statistics.median(r["scf_wall"] / r["iterations"] for r in s),
            })
    return points


def slopes(points: list, xkey: str) -> dict:
    x = [p[xkey] for p in points]
    return {name: slope(x, [p[key] for p in points]) for name, (_, key) in SERIES.items()}


def plot(points: list, xkey: str, xlabel: str, title: str, path: pathlib.Path):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = [p[xkey] for p in points]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for (name, (label, key)), marker in zip(SERIES.items(), "osD^"):
        y = [p[key] for p in points]
        b = slope(x, y)
        a = statistics.fmean(math.log(v) for v in y) - b * statistics.fmean(math.log(v) for v in x)
        line, = ax.plot(x, y, marker, label=f"{label}: slope {b:.2f}")
        ax.plot(x, [math.exp(a) * v ** b for v in x], "-", color=line.get_color(), lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("wall time (s)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(quick: bool, repeats: int, plot_dir: pathlib.Path) -> dict:
    """Both scans, their slopes and plots. Returns {"kpoints": {...}, "ecut": {...}}."""
    cases = common.QUICK_CASES if quick else common.CASES
    al, si = cases["al"], cases["si"]       # the k-grid of al and the Ecut of si are scanned
    print(f"scaling with k-points ({al.title}), load {common.load_average()}", file=sys.stderr, flush=True)
    kpoints = measure([al.with_settings(kpts=(k, k, k)) for k in (QUICK_K_GRIDS if quick else K_GRIDS)],
                      repeats, "al")
    print(f"scaling with Ecut ({si.title}), load {common.load_average()}", file=sys.stderr, flush=True)
    ecut = measure([si.with_settings(ecut=e) for e in (QUICK_ECUTS if quick else ECUTS)], repeats, "si")
    plot_dir.mkdir(parents=True, exist_ok=True)
    files = {"kpoints": plot_dir / "scaling_kpoints.png", "ecut": plot_dir / "scaling_ecut.png"}
    plot(kpoints, "nk", "irreducible k-points", f"{al.label.split(',', 1)[0]}: time against k-points "
         f"(k×k×k, Ecut {al.ecut:g} Ha)", files["kpoints"])
    plot(ecut, "ecut", "Ecut (Ha)", f"{si.label.split(',', 1)[0]}: time against Ecut "
         f"({'×'.join(map(str, si.kpts))})", files["ecut"])
    return {
        "kpoints": {"case": al.label, "points": kpoints, "slopes_nk": slopes(kpoints, "nk"),
                    "slopes_total_k": slopes(kpoints, "total_k"), "plot": files["kpoints"]},
        "ecut": {"case": si.label, "points": ecut, "slopes": slopes(ecut, "ecut"), "plot": files["ecut"]},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small grids and Ecut, for development")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--plot-dir", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent)
    args = parser.parse_args()
    common.check_abinit()
    result = run(args.quick, args.repeats or (1 if args.quick else 3), args.plot_dir)
    for name, fit in result["kpoints"]["slopes_nk"].items():
        print(f"k-points: slope of {SERIES[name][0]} against irreducible k: {fit:.3f}, "
              f"against k³: {result['kpoints']['slopes_total_k'][name]:.3f}")
    for name, fit in result["ecut"]["slopes"].items():
        print(f"Ecut: slope of {SERIES[name][0]}: {fit:.3f}")


if __name__ == "__main__":
    main()

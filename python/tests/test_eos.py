"""Equation of state (`solidxc.eos`): the Birch-Murnaghan fit, the scan, and lattice constants against ABINIT 9.6.2.

Reference: python/tests/reference/abinit/abinit_eos.json, a subset of
/work/shared/reference/abinit_eos_same_gth_pp.json (ABINIT 9.6.2 E(a) scans with the same GTH-Pade
parameters as SolidXC's "gth-pade" table, written as pspcod-10 files; LDA = libxc LDA_X + LDA_C_VWN,
ixc -1007). Each point's input deck is in the JSON; python/tests/reference/abinit/make_abinit_eos.py rebuilt
the decks and reran them to record ABINIT's FFT grid (ngfft), reproducing every stored etotal exactly.
ABINIT used kptopt 1 (k-points reduced by the full point group, density symmetrised); on these
Gamma-centred grids that is the same calculation as SolidXC's time-reversal-only k-set.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest

import solidxc
from solidxc.eos import HARTREE_PER_BOHR3_IN_GPA, birch_murnaghan, fit_birch_murnaghan

EOS_MODULE = sys.modules["solidxc.eos"]  # `solidxc.eos` itself is the function
REFERENCE = pathlib.Path(__file__).parent / "reference" / "abinit" / "abinit_eos.json"
ABINIT = json.loads(REFERENCE.read_text())
SCANS = {scan["system"]: scan for scan in ABINIT["scans"]}
BOHR_ANGSTROM = ABINIT["bohr_angstrom"]  # the constant the decks were written with (0.52917721092)

#: Si-like Birch-Murnaghan parameters (ABINIT's fit of its Si 3x3x3 scan): E0 Ha, V0 bohr^3, B0 Ha/bohr^3, B0'.
SI_PARAMS = (-7.911923203081427, 268.0333731480789, 95.25811402969244 / HARTREE_PER_BOHR3_IN_GPA, 4.164326412324682)
#: Al-like parameters, with a large B0' (ABINIT Al 4x4x4), and a soft solid with B0' < 4.
AL_PARAMS = (-2.0923702036819467, 106.89102911730113, 84.92276560011881 / HARTREE_PER_BOHR3_IN_GPA, 5.043865416804366)
SOFT_PARAMS = (-1.0, 400.0, 5.0 / HARTREE_PER_BOHR3_IN_GPA, 3.2)


# ------------------------------------------------------------------------------------------------------------
# 1. The fit, independent of the DFT code
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [SI_PARAMS, AL_PARAMS, SOFT_PARAMS], ids=["si", "al", "soft"])
@pytest.mark.parametrize("window", [0.03, 0.09])
def test_bm_fit_recovers_exact_parameters_from_synthetic_bm_data(params, window):
    """7 points of exact BM E(V), linear scales 1 -+ window around a0 shifted off-centre by 1 %."""
    e0, v0, b0, bp = params
    volumes = v0 * (1.01 * np.linspace(1 - window, 1 + window, 7)) ** 3
    fit = fit_birch_murnaghan(volumes, birch_murnaghan(volumes, *params))
    assert fit.e0 == pytest.approx(e0, rel=1e-8)
    assert fit.v0 == pytest.approx(v0, rel=1e-8)
    assert fit.b0 == pytest.approx(b0, rel=1e-8)
    assert fit.b0_prime == pytest.approx(bp, rel=1e-8)
    assert np.max(np.abs(fit.residuals)) < 1e-12


def test_bm_fit_recovers_parameters_from_noisy_data():
    """Gaussian noise of 1e-6 Ha (the SCF/basis noise level of a scan) on the Si-like curve, 7 points at
    0.955 ... 1.045. The bounds are ~5x the spread of the fitted parameters over 2000 noise draws
    (std: V0 1.3e-5 relative, B0 1.3e-4 relative, B0' 5e-3, E0 6e-7 Ha)."""
    e0, v0, b0, bp = SI_PARAMS
    volumes = v0 * np.linspace(0.955, 1.045, 7) ** 3
    rng = np.random.default_rng(20240611)
    energies = birch_murnaghan(volumes, *SI_PARAMS) + rng.normal(0.0, 1e-6, volumes.size)
    fit = fit_birch_murnaghan(volumes, energies)
    assert abs(fit.e0 - e0) < 3e-6
    assert fit.v0 == pytest.approx(v0, rel=7e-5)
    assert fit.b0 == pytest.approx(b0, rel=7e-4)
    assert fit.b0_prime == pytest.approx(bp, abs=0.025)
    assert np.std(fit.residuals) < 2e-6


def test_bm_energy_matches_ase_and_its_curvature_is_b0():
    """Our E(V) against ASE's independent birchmurnaghan (ase.eos, PRB 70, 224107 Eq. 3), and the defining
    properties E'(V0) = 0, V0 E''(V0) = B0, B'(V0) = B0' by finite differences of P = -dE/dV."""
    ase_eos = pytest.importorskip("ase.eos")
    e0, v0, b0, bp = SI_PARAMS
    volumes = v0 * np.linspace(0.85, 1.15, 13)
    assert np.allclose(birch_murnaghan(volumes, *SI_PARAMS), ase_eos.birchmurnaghan(volumes, e0, b0, bp, v0),
                       rtol=0, atol=1e-13)
    h = 2e-4 * v0  # truncation ~(h/V0)^2, rounding ~1e-16 E / h: both well below the bounds

    def pressure(v):
        return -(birch_murnaghan(v + h, *SI_PARAMS) - birch_murnaghan(v - h, *SI_PARAMS)) / (2 * h)

    def bulk_modulus(v):
        return -v * (pressure(v + h) - pressure(v - h)) / (2 * h)

    assert abs(pressure(v0)) < 1e-7 * b0
    assert bulk_modulus(v0) == pytest.approx(b0, rel=1e-6)
    bprime = (bulk_modulus(v0 + h) - bulk_modulus(v0 - h)) / (pressure(v0 + h) - pressure(v0 - h))
    assert bprime == pytest.approx(bp, rel=1e-4)


@pytest.mark.parametrize("system", ["si", "al"])
def test_bm_fit_of_abinit_points_matches_abinit_reference_fit(system):
    """Our fit of ABINIT's own etotal(V) against the fit stored with the data (scipy curve_fit with default
    tolerances, /work/shared/reference/scripts/abinit_eos.py): the two fitters must agree far below 0.1 %."""
    scan = SCANS[system]
    ref = scan["bm_fit_on_etotal"]
    volumes = [p["volume_bohr3"] for p in scan["points"]]
    fit = fit_birch_murnaghan(volumes, [p["etotal_Ha"] for p in scan["points"]])
    assert fit.v0 == pytest.approx(ref["V0_bohr3"], rel=1e-6)
    assert fit.e0 == pytest.approx(ref["E0_Ha"], abs=1e-9)
    assert fit.b0 * HARTREE_PER_BOHR3_IN_GPA == pytest.approx(ref["B0_GPa"], rel=1e-3)  # GPa constants differ by 4e-7
    assert fit.b0_prime == pytest.approx(ref["B0_prime"], rel=1e-4)
    assert np.max(np.abs(fit.residuals)) == pytest.approx(ref["max_abs_residual_Ha"], rel=1e-3)


def test_from_energies_reports_the_equilibrium_scale_and_lattice_constant():
    e0, v0, b0, bp = AL_PARAMS
    reference_volume, a_ref = 112.0, 7.65
    scales = np.linspace(0.95, 1.03, 5)
    energies = birch_murnaghan(reference_volume * scales ** 3, *AL_PARAMS)
    result = solidxc.EOSResult.from_energies(scales[::-1], energies[::-1], reference_volume, a_ref)
    assert np.all(np.diff(result.scales) > 0)  # sorted ascending, energies with them
    assert result.energies == pytest.approx(energies, abs=1e-15)
    assert result.scale0 == pytest.approx((v0 / reference_volume) ** (1 / 3), rel=1e-9)
    assert result.a0 == pytest.approx(result.scale0 * a_ref, rel=1e-15)
    assert result.b0_gpa == pytest.approx(84.92276560011881, rel=1e-8)
    assert result.a0_angstrom == pytest.approx(result.a0 * solidxc.units.BOHR_IN_ANGSTROM)
    assert "GPa" in repr(result) and "bohr" in repr(result)


@pytest.mark.parametrize("scales, side", [(np.linspace(1.03, 1.11, 5), "smaller"),
                                          (np.linspace(0.85, 0.93, 5), "larger")])
def test_minimum_outside_scan_names_the_side_to_extend(scales, side):
    reference_volume = AL_PARAMS[1]
    energies = birch_murnaghan(reference_volume * scales ** 3, *AL_PARAMS)
    with pytest.raises(solidxc.InputError, match=f"scales: .*extend the scan to {side} scales"):
        solidxc.EOSResult.from_energies(scales, energies, reference_volume)


def test_fit_rejects_data_without_minimum():
    volumes = np.linspace(100, 120, 6)
    with pytest.raises(solidxc.InputError, match="no minimum"):
        fit_birch_murnaghan(volumes, -(volumes - 110.0) ** 2)


# ------------------------------------------------------------------------------------------------------------
# 2. The scan, on a cheap aluminium cell (mechanics only; physics against ABINIT below)
# ------------------------------------------------------------------------------------------------------------

#: 3.86 Å: the minimum of this under-converged cell (ecut 8 Ha, 2x2x2) lies inside the default 0.97 ... 1.03.
CHEAP_A = 3.86 / BOHR_ANGSTROM


def cheap_al(a: float = CHEAP_A, **kwargs) -> solidxc.System:
    lattice = a / 2 * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    options = dict(ecut=8, kpts=(2, 2, 2), smearing="fermi-dirac", temperature=0.01)
    options.update(kwargs)
    return solidxc.System(lattice, [("Al", (0.0, 0.0, 0.0))], pseudo="gth-pade", **options)


@pytest.fixture(scope="module")
def cheap_scan():
    return solidxc.eos(cheap_al(), xc="lda,pw", a_ref=CHEAP_A, keep_results=True, progress=False)


def test_default_scan_uses_seven_scales_and_the_largest_scales_grid(cheap_scan):
    assert cheap_scan.scales == pytest.approx(np.linspace(0.97, 1.03, 7), abs=1e-15)
    largest = cheap_al(1.03 * CHEAP_A).fft_size
    assert cheap_scan.fft_sizes == [largest] * 7
    assert [r.fft_size for r in cheap_scan.results] == [largest] * 7
    volume = cheap_al().volume
    assert cheap_scan.volumes == pytest.approx(volume * cheap_scan.scales ** 3, rel=1e-14)
    assert [r.volume for r in cheap_scan.results] == pytest.approx(cheap_scan.volumes, rel=1e-13)
    assert cheap_scan.energies == pytest.approx([r.energy for r in cheap_scan.results], abs=0)
    assert cheap_scan.iterations.tolist() == [r.iterations for r in cheap_scan.results]
    assert 0.97 < cheap_scan.scale0 < 1.03
    assert cheap_scan.a0 == pytest.approx(cheap_scan.scale0 * CHEAP_A, rel=1e-15)


def test_warm_started_points_equal_cold_scf(cheap_scan):
    """The warm start changes the path, not the answer: the end points (scanned last in each direction,
    each started from its neighbour) against a cold SCF on the same grid, which also needs more iterations."""
    for i in (0, 6):
        system = cheap_al(cheap_scan.scales[i] * CHEAP_A, fft_size=cheap_scan.fft_sizes[i])
        cold = solidxc.scf(system, xc="lda,pw")
        assert abs(cold.energy - cheap_scan.energies[i]) < 1e-8
        assert cold.iterations > cheap_scan.iterations[i]


def test_scan_atoms_scale_with_the_cell():
    """Si with two atoms: fractional positions stay fixed, so E at scale s equals a direct SCF on the
    scaled diamond cell. (Smearing and 12 bands because this 2x2x2, ecut 6 cell closes its gap when stretched.)"""
    a = 10.263102582513
    lattice = a / 2 * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    options = dict(ecut=6, kpts=(2, 2, 2), smearing="fermi-dirac", temperature=0.01)
    si = solidxc.System(lattice, [("Si", (0, 0, 0)), ("Si", (a / 4, a / 4, a / 4))], **options)
    result = solidxc.eos(si, [0.94, 0.97, 1.0, 1.03, 1.06], nbands=12, progress=False)
    s = 1.06
    direct = solidxc.System(lattice * s, [("Si", (0, 0, 0)), ("Si", (s * a / 4,) * 3)], fft_size=result.fft_sizes[-1],
                            **options)
    assert result.energies[-1] == pytest.approx(solidxc.scf(direct, nbands=12).energy, abs=1e-8)
    assert result.a_ref == pytest.approx(a / np.sqrt(2), rel=1e-15)  # default: |first lattice vector|


def test_zero_width_energy_is_fitted_when_asked():
    scales = [0.97, 0.985, 1.0, 1.015, 1.03]
    result = solidxc.eos(cheap_al(), scales, energy="zero_width", keep_results=True, progress=False)
    assert result.energy_kind == "zero_width"
    assert result.energies == pytest.approx([r.energy_zero_width for r in result.results], abs=0)
    assert np.all(np.abs(result.energies - [r.energy for r in result.results]) > 1e-6)  # smearing 0.01 Ha matters


def test_progress_bar_with_and_without_tqdm_and_results_not_kept_by_default(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    scales = [0.97, 0.985, 1.0, 1.015, 1.03]
    with_bar = solidxc.eos(cheap_al(), scales, progress=True)
    assert "eos" in capsys.readouterr().err
    assert with_bar.results is None and with_bar.energies.shape == (5,)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    without = solidxc.eos(cheap_al(), scales, progress=True)
    assert capsys.readouterr().err == ""
    assert without.energies == pytest.approx(with_bar.energies, abs=1e-10)


def test_plot_shows_points_and_fit(cheap_scan, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = cheap_scan.plot()
    ax = fig.axes[0]
    points, curve = ax.lines[0], ax.lines[1]
    assert np.allclose(points.get_xdata(), cheap_scan.volumes)
    assert np.allclose(points.get_ydata(), (cheap_scan.energies - cheap_scan.e0) * 1e3)
    assert len(curve.get_xdata()) > 50
    fig.savefig(tmp_path / "eos.png")
    _, ax2 = plt.subplots()
    assert cheap_scan.plot(ax=ax2) is ax2.figure
    plt.close("all")


# ------------------------------------------------------------------------------------------------------------
# 3. Bad input
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scales, match", [
    ([0.98, 0.99, 1.0, 1.01], "scales: need at least 5"),
    ([], "scales: need at least 5"),
    ([0.0, 0.98, 1.0, 1.02, 1.04], "scales: every scale factor must be finite and > 0"),
    ([-1.0, 0.98, 1.0, 1.02, 1.04], "scales: every scale factor must be finite and > 0"),
    ([np.nan, 0.98, 1.0, 1.02, 1.04], "scales: every scale factor must be finite and > 0"),
    ([0.98, 0.98, 1.0, 1.02, 1.04], "scales: values must be distinct"),
    ("abcde", "scales: expected a sequence of numbers"),
])
def test_bad_scales_raise_input_error_before_any_scf(scales, match, monkeypatch):
    monkeypatch.setattr(EOS_MODULE, "scf", lambda *a, **k: pytest.fail("scf ran"))
    with pytest.raises(solidxc.InputError, match=match):
        solidxc.eos(cheap_al(), scales, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(energy="internal"), "energy: expected one of"),
    (dict(a_ref=-1.0), "a_ref: expected a positive length"),
    (dict(a_ref="7.6"), "a_ref: expected a positive length"),
    (dict(fft_size=(15, 15)), "fft_size: expected"),
    (dict(fft_size=[(15, 15, 15)] * 4), "fft_size: expected"),
    (dict(fft_size=(15.5, 15, 15)), "fft_size: expected"),
])
def test_bad_options_raise_input_error_before_any_scf(kwargs, match, monkeypatch):
    monkeypatch.setattr(EOS_MODULE, "scf", lambda *a, **k: pytest.fail("scf ran"))
    with pytest.raises(solidxc.InputError, match=match):
        solidxc.eos(cheap_al(), progress=False, **kwargs)


def test_eos_needs_a_system():
    with pytest.raises(TypeError, match="solidxc.System"):
        solidxc.eos([[1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_minimum_outside_scan_raises_after_the_scan():
    """The cheap cell's minimum is near a = 3.86 Å; scanning 4.05 Å * (1.00 ... 1.04) puts it below."""
    with pytest.raises(solidxc.InputError, match="smallest scale .* extend the scan to smaller scales"):
        solidxc.eos(cheap_al(4.05 / BOHR_ANGSTROM), [1.0, 1.01, 1.02, 1.03, 1.04], progress=False)


@pytest.mark.parametrize("raise_on_nonconvergence", [True, False])
def test_non_converged_point_raises_convergence_error_naming_the_scale(raise_on_nonconvergence):
    """The first point (scale 1) stops after 2 iterations; the error carries that point's scale and history."""
    with pytest.raises(solidxc.ConvergenceError) as info:
        solidxc.eos(cheap_al(), maxiter=2, progress=False, raise_on_nonconvergence=raise_on_nonconvergence)
    assert info.value.scale == 1.0
    assert info.value.history.size == 2
    assert "at scale factor 1 " in " ".join(getattr(info.value, "__notes__", [])) + " "


def test_core_input_error_at_one_point_names_its_scale_before_any_scf(monkeypatch):
    """A grid that holds the density sphere at scale 1 but not at 1.3 is refused before the scan starts."""
    monkeypatch.setattr(EOS_MODULE, "scf", lambda *a, **k: pytest.fail("scf ran"))
    system = cheap_al()
    with pytest.raises(solidxc.InputError, match="fft_size: .* too small") as info:
        solidxc.eos(system, [0.9, 1.0, 1.1, 1.2, 1.3], fft_size=system.fft_size, progress=False)
    assert info.value.scale == pytest.approx(1.3)


# ------------------------------------------------------------------------------------------------------------
# 4. Lattice constants and energies against ABINIT 9.6.2 (same pseudopotential, Ecut, k-grid, smearing, a)
# ------------------------------------------------------------------------------------------------------------

def _abinit_system(scan) -> tuple[solidxc.System, float]:
    """The ABINIT cell at the scan's middle lattice constant (a_ref, bohr, as in the deck)."""
    a_ref = scan["points"][len(scan["points"]) // 2]["a_bohr"]
    lattice = np.array(scan["rprim_over_a"]) * a_ref
    atoms = [(el, np.array(x) @ lattice) for el, x in zip(scan["elements"], scan["xred"])]
    smearing = "fermi-dirac" if scan["occopt"] == 3 else None
    system = solidxc.System(lattice, atoms, pseudo=scan["pseudo"], ecut=scan["ecut_Ha"], kpts=tuple(scan["ngkpt"]),
                            kshift=tuple(scan["shiftk"]), smearing=smearing, temperature=scan["tsmear_Ha"])
    return system, a_ref


def _compare_with_abinit(system_name: str, grids: str, points: slice = slice(None)):
    """Runs `solidxc.eos` at exactly ABINIT's lattice constants and checks each energy against ABINIT's etotal
    (1e-6 Ha/atom) and the fitted a0 against the same fit of ABINIT's energies (0.1 %). Returns (ours, ABINIT's)
    lattice constants in Å."""
    scan = SCANS[system_name]
    chosen = scan["points"][points]
    system, a_ref = _abinit_system(scan)
    natom = len(scan["elements"])
    scales = [p["a_bohr"] / a_ref for p in chosen]
    fft_size = [p["ngfft"] for p in chosen] if grids == "abinit" else None
    result = solidxc.eos(system, scales, xc=scan["xc"], a_ref=a_ref, fft_size=fft_size, energy="free",
                         nbands=scan["nband"], tol=1e-10, progress=False)
    if grids == "abinit":
        assert result.fft_sizes == [tuple(p["ngfft"]) for p in chosen]
    etotal = np.array([p["etotal_Ha"] for p in chosen])
    error = np.abs(result.energies - etotal) / natom
    assert np.all(error < 1e-6), f"SolidXC - ABINIT per atom (Ha): {result.energies - etotal}"

    theirs = fit_birch_murnaghan([p["a_bohr"] ** 3 / 4 for p in chosen], etotal)
    a0_abinit = (4 * theirs.v0) ** (1 / 3) * BOHR_ANGSTROM  # fcc: V = a^3 / 4
    if points == slice(None):
        assert a0_abinit == pytest.approx(scan["bm_fit_on_etotal"]["a0_angstrom"], rel=1e-7)
    a0 = result.a0 * BOHR_ANGSTROM
    assert a0 == pytest.approx(a0_abinit, rel=1e-3)
    assert result.b0 == pytest.approx(theirs.b0, rel=1e-2)
    return a0, a0_abinit


def test_al_lda_fd_a0_matches_abinit_five_points_abinit_ngfft():
    """Fast variant. Al fcc, lda,vwn, gth-pade, ecut 30 Ha, 4x4x4 Gamma-centred, Fermi-Dirac 0.01 Ha (free
    energy), nband 8: ABINIT's middle five lattice constants (3.92850 ... 4.17150 Å), each with ABINIT's own
    ngfft (27^3 or 30^3; the density warm start then applies only between equal grids, orbitals always).
    Compared with the same Birch-Murnaghan fit of ABINIT's five etotals."""
    _compare_with_abinit("al", "abinit", slice(1, 6))


@pytest.mark.slow
@pytest.mark.parametrize("grids", ["abinit", "fixed"])
@pytest.mark.parametrize("system_name", ["si", "al"])
def test_lda_a0_matches_abinit_seven_points(system_name, grids):
    """Si diamond (lda,vwn, gth-pade, ecut 40 Ha, 3x3x3, a0 = 5.4161 Å) and Al fcc (lda,vwn, gth-pade,
    ecut 30 Ha, 4x4x4, Fermi-Dirac 0.01 Ha free energy, a0 = 3.9866 Å): ABINIT's seven lattice constants
    a_ref * (0.955 ... 1.045), nband 8, toldfe-like tol 1e-10.

    grids="abinit": each point on ABINIT's ngfft (Si 40^3 at the smallest a, else 45^3; Al 27^3 / 30^3), the
    identical calculation. grids="fixed": eos's default, one grid for the whole scan (the core's grid at the
    largest scale: Si 45^3, Al 30^3); a finer grid than ABINIT's changes only the XC quadrature, measured
    <= 4e-10 Ha/atom here. Both must give ABINIT's a0 within 0.1 % and its energies within 1e-6 Ha/atom.
    """
    a0, a0_abinit = _compare_with_abinit(system_name, grids)
    assert a0_abinit == pytest.approx({"si": 5.4161, "al": 3.9866}[system_name], abs=5e-5)

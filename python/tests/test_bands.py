"""Band structures and densities of states (issue 6): non-self-consistent bands at arbitrary
k-points of a converged SCF (``sxc_result_bands``, ``solidxc.bands``).

- Si (LDA, GTH-PADE, ecut 15, 4x4x4): band energies at Gamma, X, L, W, K, a point near the
  conduction-band minimum and a general point against ABINIT 9.6.2's non-self-consistent run
  (dataset 2: iscf -2, getden 1) in ``reference/abinit/bands/abinit_bands.json`` (deck and script
  next to it). Conventions: ABINIT leaves the G=0 part of the local pseudopotential out of the
  potential, so SolidXC = ABINIT + psp_core / N_el (the ``eigenvalue_shift_psp_core_over_nel_Ha``
  the script stores); the comparison is also made after aligning the VBMs at Gamma, which needs no
  convention. Requirement: 1e-4 Ha per band.
- Consistency: bands at the SCF's own k-points reproduce its eigenvalues; bands are periodic in
  k and even under k -> -k; Al (smeared metal) and bcc Fe (spin, two channels) work; the DOS
  integrates to the electron count.
- Plots render (Agg) with one line per band and spin; bad input raises errors naming the argument.
"""
from __future__ import annotations

import ctypes
import json
import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import solidxc  # noqa: E402
from solidxc import bands as sxb  # noqa: E402
from solidxc.units import ANGSTROM_IN_BOHR, HARTREE_IN_EV  # noqa: E402

pytestmark = pytest.mark.fast

REFERENCE = pathlib.Path(__file__).parent / "reference" / "abinit" / "bands" / "abinit_bands.json"
SI = json.loads(REFERENCE.read_text())["cases"][0]
TOLERANCE = 1e-4  # Ha per band (issue 6)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


@pytest.fixture(scope="module")
def si():
    """Si at the reference's settings (lattice, ecut, 4x4x4 grid, ABINIT's FFT grid, 8 bands). The
    space group is on: the converged density equals the time-reversal-only one of the deck (kptopt 2,
    nsym 1) to ~1e-10 Ha (README of python/tests/reference/abinit)."""
    system = solidxc.System(SI["lattice_bohr"], [(a["element"], a["cart_bohr"]) for a in SI["atoms"]],
                            pseudo=SI["pseudo"], ecut=SI["ecut_Ha"], kpts=tuple(SI["ngkpt"]),
                            kshift=tuple(SI["shiftk"]), fft_size=tuple(SI["ngfft"]))
    return solidxc.scf(system, xc=SI["xc"], tol=1e-11, density_tol=1e-9, nbands=SI["nband"])


@pytest.fixture(scope="module")
def al():
    """fcc Al, LDA, gaussian smearing 0.02 Ha (a metal)."""
    a = 4.05 * ANGSTROM_IN_BOHR
    lattice = (a / 2) * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    system = solidxc.System(lattice, [("Al", (0, 0, 0))], ecut=10, kpts=(4, 4, 4), smearing="gaussian",
                            temperature=0.02)
    return solidxc.scf(system, xc="lda,pw", tol=1e-11)


@pytest.fixture(scope="module")
def fe():
    """bcc Fe, spin-polarised LDA (GTH-PADE q8), Fermi-Dirac 0.01 Ha: ferromagnetic, about 2.3 muB."""
    a = 2.87 * ANGSTROM_IN_BOHR
    lattice = (a / 2) * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    system = solidxc.System(lattice, [("Fe", (0, 0, 0))], pseudo="gth-pade-q8", ecut=15, kpts=(3, 3, 3),
                            smearing="fermi-dirac", temperature=0.01, magmoms=[2.5])
    return solidxc.scf(system, xc="lda,pw", tol=1e-10)


# ------------------------------------------------------------------------------------------ against ABINIT
def test_si_band_energies_match_abinit_nscf_at_gamma_x_l(si):
    kpts = np.array(SI["kpoints_reduced"])
    labels = SI["kpoint_labels"]
    ours = sxb.eigenvalues_at(si, kpts, nbands=SI["nband"])[0]
    abinit = np.array(SI["eigenvalues_Ha"])
    shift = SI["eigenvalue_shift_psp_core_over_nel_Ha"]
    diff = ours - (abinit + shift)
    offset = float(np.mean(ours - abinit))
    nocc = SI["n_occupied_bands"]
    aligned = (ours - ours[0, nocc - 1]) - (abinit - abinit[0, nocc - 1])  # both relative to the VBM at Gamma
    for name, d, a in zip(labels, np.abs(diff).max(axis=1), np.abs(aligned).max(axis=1)):
        print(f"{name:>10}: max |eps - (eps_abinit + psp_core/N)| = {d:.2e} Ha, relative to the Gamma VBM {a:.2e} Ha")
    print(f"mean offset SolidXC - ABINIT = {offset:.10f} Ha; psp_core/N_el = {shift:.10f} Ha "
          f"(difference {offset - shift:.1e})")
    for name in ("G", "X", "L"):
        assert name in labels
    # The labelled points are ASE's fcc special points of this cell.
    special = solidxc.bands._band_path(si, "GXLWK", 5).special_points
    for name, k in zip(labels, kpts):
        if name in special:
            assert np.allclose(special[name], k, atol=1e-12), name
    assert np.abs(diff).max() < TOLERANCE
    assert np.abs(aligned).max() < TOLERANCE
    assert abs(offset - shift) < TOLERANCE


def test_si_gap_matches_abinit(si):
    """The indirect gap over the SCF grid and the reference points: VBM at Gamma, CBM at 0.85 X."""
    kpts = np.concatenate([si.kpoints, np.array(SI["kpoints_reduced"])])
    bs = si.band_structure(kpts)
    gap = bs.gap()
    print(gap, f"; ABINIT {SI['gap_Ha']:.8f} Ha ({SI['gap_Ha'] * HARTREE_IN_EV:.4f} eV), "
               f"SolidXC - ABINIT {gap.value - SI['gap_Ha']:+.1e} Ha")
    assert not gap.metal and not gap.direct
    assert np.allclose(gap.k_vbm, 0) and np.allclose(gap.k_cbm, [0.425, 0, 0.425])
    assert abs(gap.value - SI["gap_Ha"]) < TOLERANCE
    assert abs(gap.vbm - (SI["vbm_Ha"] + SI["eigenvalue_shift_psp_core_over_nel_Ha"])) < TOLERANCE


# ------------------------------------------------------------------------------------------ consistency
@pytest.mark.parametrize("name", ["si", "al", "fe"])
def test_bands_at_the_scf_kpoints_reproduce_the_scf_eigenvalues(name, request):
    result = request.getfixturevalue(name)
    ours = sxb.eigenvalues_at(result, result.kpoints)
    assert ours.shape == result.eigenvalues.shape
    print(f"{name}: max |eps_nscf - eps_scf| = {np.abs(ours - result.eigenvalues).max():.1e} Ha")
    assert np.abs(ours - result.eigenvalues).max() < 1e-8


@pytest.mark.parametrize("lattice_angstrom,kpts", [(2.87, 4), (2.85, 3)])
def test_scf_keeps_the_lowest_levels_through_level_crossings(lattice_angstrom, kpts):
    """bcc Fe (as the `fe` fixture, other lattice constants or k-grids). Without buffer bands the SCF
    returned, converged, the level above a triply degenerate minority-spin level at Gamma in place of
    two of its members (top eigenvalues 9e-3 and 3.6e-2 Ha above the non-self-consistent ones here,
    with two different rounding histories). The likely mechanism (not traced step by step): the level
    left the warm-started block in an early SCF step, and the other bands' search directions have no
    component in its symmetry class. The bands recomputed from the converged potential, from a fresh
    start, must agree."""
    a = lattice_angstrom * ANGSTROM_IN_BOHR
    lattice = (a / 2) * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    system = solidxc.System(lattice, [("Fe", (0, 0, 0))], pseudo="gth-pade-q8", ecut=15, kpts=(kpts,) * 3,
                            smearing="fermi-dirac", temperature=0.01, magmoms=[2.5])
    result = solidxc.scf(system, xc="lda,pw", tol=1e-10)
    ours = sxb.eigenvalues_at(result, result.kpoints)
    print(f"max |eps_nscf - eps_scf| = {np.abs(ours - result.eigenvalues).max():.1e} Ha")
    assert np.abs(ours - result.eigenvalues).max() < 1e-8


def test_bands_are_periodic_in_k_and_even_under_time_reversal(si):
    k = np.array([[0.13, 0.27, 0.41], [0.4, -0.1, 0.25]])
    e = sxb.eigenvalues_at(si, k)
    shifted = sxb.eigenvalues_at(si, k + np.array([1.0, -2.0, 3.0]))
    reversed_ = sxb.eigenvalues_at(si, -k)
    assert np.abs(shifted - e).max() < 1e-8
    assert np.abs(reversed_ - e).max() < 1e-8


def test_more_bands_keep_the_lower_ones(si):
    k = np.array([[0.13, 0.27, 0.41]])
    few = sxb.eigenvalues_at(si, k, nbands=4)
    many = sxb.eigenvalues_at(si, k, nbands=12)
    assert many.shape == (1, 1, 12)
    assert np.abs(many[..., :4] - few).max() < 1e-8
    assert np.all(np.diff(many[0, 0]) >= -1e-12)


def test_metal_band_structure_crosses_the_fermi_level(al):
    bs = al.band_structure("GXWLG", npoints=20)
    assert bs.energies.shape == (1, 20, al.nbands)
    assert bs.gap().metal and bs.reference == al.fermi_level
    assert bs.special_labels == ["G", "X", "W", "L", "G"]


def test_spin_band_structure_has_two_different_channels(fe):
    assert fe.magnetization.total > 1.5
    bs = fe.band_structure("GHNG", npoints=12)
    assert bs.energies.shape == (2, 12, fe.nbands)
    split = bs.energies[1] - bs.energies[0]  # exchange splitting of the d bands: down above up
    print(f"Fe: mean exchange splitting of the lowest 6 bands {split[:, :6].mean() * HARTREE_IN_EV:.3f} eV")
    assert split[:, :6].mean() > 0.02


def test_dos_integrates_to_the_electron_count_with_the_scf_smearing(al):
    """With the SCF's own smearing (gaussian, 0.02 Ha), the DOS up to the Fermi level holds exactly the
    electrons the SCF's occupations hold: sum_k w_k sum_n erfc((eps - E_F)/sigma) = N_el."""
    d = al.dos(width=0.02, kind="gaussian", npoints=20001)
    assert d.dos.shape == (1, 20001) and d.integrated.shape == (1, 20001)
    assert abs(d.electrons_below(al.fermi_level) - al.nelectrons) < 1e-8
    below = d.energies <= al.fermi_level
    numeric = _trapezoid(d.total[below], d.energies[below]) + d.total[below][-1] * (al.fermi_level - d.energies[below][-1])
    print(f"Al: electrons below E_F: exact {d.electrons_below(al.fermi_level):.10f}, "
          f"trapezoid of the DOS {numeric:.6f}, N_el {al.nelectrons}")
    assert abs(numeric - al.nelectrons) < 1e-3
    # The integrated DOS is the running integral of the DOS, and counts every band at the top.
    running = np.concatenate([[0.0], np.cumsum(0.5 * (d.total[1:] + d.total[:-1]) * np.diff(d.energies))])
    assert np.abs(running - d.integrated[0]).max() < 1e-3
    assert abs(d.integrated[0, -1] - 2 * al.nbands) < 1e-6


def test_dos_on_a_new_grid_equal_to_the_scf_grid_matches_the_scf_dos(al):
    """Solved again non-self-consistently on the same 4x4x4 grid (time reversal only, 36 points instead
    of the SCF's irreducible 8), the DOS is the SCF's."""
    energies = np.linspace(al.eigenvalues.min() - 0.1, al.fermi_level + 0.2, 400)
    scf_dos = al.dos(energies=energies, width=0.02)
    nscf_dos = al.dos(energies=energies, width=0.02, kpts=(4, 4, 4))
    assert np.abs(nscf_dos.dos - scf_dos.dos).max() < 1e-6 * scf_dos.dos.max()


def test_spin_dos_has_both_channels_and_the_moment(fe):
    """Fermi-Dirac broadening of the SCF's own width reproduces its occupations: the electron count
    (exactly) and the moment (up to the energy grid)."""
    d = fe.dos(width=0.01, kind="fermi-dirac", npoints=4001)
    assert d.dos.shape[0] == 2
    assert abs(d.electrons_below(fe.fermi_level) - fe.nelectrons) < 1e-8
    up, down = (np.interp(fe.fermi_level, d.energies, d.integrated[s]) for s in (0, 1))
    print(f"Fe: N_up - N_down from the DOS {up - down:.4f}, SCF magnetization {fe.magnetization.total:.4f} muB")
    assert abs((up - down) - fe.magnetization.total) < 0.01


# ------------------------------------------------------------------------------------------ plots and ASE
def test_band_structure_plot_has_one_line_per_band_and_spin(si, fe):
    bs = si.band_structure("GXWKGLUWLK", npoints=30)
    fig = bs.plot(emin=-13, emax=8)
    assert isinstance(fig, matplotlib.figure.Figure)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "band"]
    assert len(lines) == si.nbands
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:2] == [r"$\Gamma$", "X"]
    fig.canvas.draw()
    plt.close(fig)
    fig = fe.band_structure("GHNG", npoints=8).plot()
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "band"]) == 2 * fe.nbands
    fig.canvas.draw()
    plt.close(fig)


def test_path_with_a_jump_breaks_the_lines(si):
    bs = si.band_structure("GX,LG", npoints=20)
    fig = bs.plot()
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isnan(y).sum() == 1 and len(y) == 21
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [r"$\Gamma$", "X|L", r"$\Gamma$"]
    plt.close(fig)


def test_dos_plot_has_one_line_per_spin(al, fe):
    for result, nspin in ((al, 1), (fe, 2)):
        fig = result.dos().plot(emin=-10, emax=5)
        assert len([ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "dos"]) == nspin
        fig.canvas.draw()
        plt.close(fig)


def test_to_ase_and_explicit_paths(si):
    from ase.spectrum.band_structure import BandStructure as ASEBandStructure
    path = solidxc.bands._band_path(si, "GXL", 7)
    from_path = si.band_structure(path)
    from_array = si.band_structure(path.kpts)
    assert np.abs(from_path.energies - from_array.energies).max() < 1e-10
    ase_bs = from_path.to_ase()
    assert isinstance(ase_bs, ASEBandStructure)
    assert np.allclose(ase_bs.energies, from_path.energies * HARTREE_IN_EV)
    assert "indirect" in repr(si.band_structure("GX", npoints=20)) or "direct" in repr(from_path)


# ------------------------------------------------------------------------------------------ bad input
def _raw(result, kfrac, nk, nbands, out, n):
    lib = solidxc._lib.load()
    ptr = ctypes.POINTER(ctypes.c_double)
    as_ptr = lambda a: None if a is None else a.ctypes.data_as(ptr)
    status = lib.sxc_result_bands(result.handle if result is not None else None, as_ptr(kfrac), nk, nbands,
                                  as_ptr(out), n)
    return status, solidxc._lib.last_error()


@pytest.mark.parametrize("kfrac, nk, nbands, n, status, words", [
    (None, 1, 4, 4, 1, "kfrac: is NULL"),
    ("ok", 0, 4, 4, 1, "nk: "),
    ("ok", 1, 0, 4, 1, "nbands: "),
    ("ok", 1, -3, 4, 1, "nbands: "),
    ("ok", 1, 2_000_000, 10**7, 1, "nbands: "),
    ("nan", 1, 4, 4, 1, "kfrac: k-point 0"),
    ("inf", 1, 4, 4, 1, "kfrac: k-point 0"),
    ("ok", 1, 4, 3, 7, "out: "),
    ("ok", 1, 4, None, 7, "out is NULL"),
    ("ok", 1, 5000, 5000, 1, "nbands: 5000 bands asked"),
])
def test_bad_abi_input_names_the_argument(si, kfrac, nk, nbands, n, status, words):
    k = {None: None, "ok": np.zeros(3), "nan": np.array([0.0, np.nan, 0.0]), "inf": np.array([np.inf, 0, 0])}[kfrac]
    out = None if n is None else np.zeros(max(n, 1))
    got, message = _raw(si, k, nk, nbands, out, 0 if n is None else n)
    assert got == status and words in message, message


def test_bad_abi_handle():
    status, message = _raw(None, np.zeros(3), 1, 4, np.zeros(4), 4)
    assert status == 6 and "sxc_result_bands" in message


def test_bad_python_input_raises_solidxc_errors(si):
    with pytest.raises(solidxc.InputError, match="kpts: "):
        sxb.eigenvalues_at(si, np.zeros((2, 2)))
    with pytest.raises(solidxc.InputError, match="nbands: "):
        sxb.eigenvalues_at(si, np.zeros((1, 3)), nbands=0)
    with pytest.raises(solidxc.InputError, match="kfrac: "):
        sxb.eigenvalues_at(si, [[0.1, np.nan, 0.0]])
    with pytest.raises(solidxc.InputError, match="path: "):
        si.band_structure("GQZ")
    with pytest.raises(solidxc.InputError, match="npoints: "):
        si.band_structure("GX", npoints=1)
    with pytest.raises(solidxc.InputError, match="width: "):
        si.dos(width=-0.01)
    with pytest.raises(solidxc.InputError, match="kind: "):
        si.dos(kind="triangle")
    with pytest.raises(solidxc.InputError, match="kpts: "):
        si.dos(kpts=(0, 2, 2))
    with pytest.raises(solidxc.InputError, match="units: "):
        si.band_structure("GX", npoints=4).plot(units="kcal")
    with pytest.raises(solidxc.InputError, match="nbands: all 4 bands are occupied"):
        si.band_structure("GX", npoints=4, nbands=4).gap()

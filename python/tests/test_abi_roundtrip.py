"""A tiny silicon SCF through the Python API and the C ABI: shapes, sum rules, bookkeeping.

These check the ABI's plumbing (every array arrives whole and in the documented layout),
not the physics; energies against reference codes live in their own test files.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import solidxc
from conftest import REPO, SI_A, si_atoms, si_lattice

pytestmark = pytest.mark.fast

TERMS = ["kinetic", "local", "nonlocal", "hartree", "xc", "ewald", "psp_correction"]


@pytest.fixture(scope="module")
def si_system():
    return solidxc.System(si_lattice(), si_atoms(), pseudo="gth-pade", ecut=8.0, kpts=(1, 1, 1))


@pytest.fixture(scope="module")
def si_result(si_system):
    return solidxc.scf(si_system, xc="lda,pw", tol=1e-9, maxiter=100)


def test_system_reports_volume_electrons_and_grid(si_system):
    assert si_system.volume == pytest.approx(SI_A ** 3 / 4, rel=1e-14)
    assert si_system.nelectrons == 8
    assert len(si_system.fft_size) == 3 and all(n > 0 for n in si_system.fft_size)
    assert si_system.dv == pytest.approx(si_system.volume / np.prod(si_system.fft_size), rel=1e-15)
    text = repr(si_system)
    assert "bohr^3" in text and "Ha" in text and "Si2" in text


def test_si_ecut8_k111_result_shapes(si_system, si_result):
    r = si_result
    assert r.converged and r.iterations >= 1
    assert r.nspin == 1 and r.nkpoints == 1
    assert r.fft_size == si_system.fft_size
    assert r.eigenvalues.shape == (r.nspin, r.nkpoints, r.nbands)
    assert r.occupations.shape == r.eigenvalues.shape
    assert r.nbands >= 4
    assert r.kpoints.shape == (r.nkpoints, 3)
    assert r.kweights.shape == (r.nkpoints,)
    assert r.density.shape == (r.nspin,) + si_system.fft_size
    assert r.residual_history.shape == (r.iterations,)
    assert r.energy_history.shape == (r.iterations,)
    for array in (r.eigenvalues, r.occupations, r.kpoints, r.kweights, r.density, r.residual_history):
        assert array.dtype == np.float64 and np.all(np.isfinite(array))
    assert r.volume == si_system.volume and r.nelectrons == 8


def test_si_kweights_sum_to_one(si_result):
    assert si_result.kweights.sum() == pytest.approx(1.0, abs=1e-14)


def test_si_density_integrates_to_eight_electrons(si_system, si_result):
    assert si_result.density.sum() * si_system.dv == pytest.approx(8.0, abs=1e-8)
    assert si_result.density.min() > -1e-10


def test_si_energy_terms_sum_to_total(si_result):
    assert list(si_result.energies) == TERMS
    assert sum(si_result.energies.values()) == pytest.approx(si_result.energy, abs=1e-10)


def test_si_eigenvalues_sorted_and_occupations_hold_eight_electrons(si_result):
    r = si_result
    assert np.all(np.diff(r.eigenvalues, axis=-1) >= -1e-12)
    electrons = np.einsum("k,skn->", r.kweights, r.occupations)
    assert electrons == pytest.approx(8.0, abs=1e-12)
    # insulator without smearing: the Fermi level is the highest occupied eigenvalue
    occupied = r.eigenvalues[r.occupations > 0]
    assert r.fermi_level == pytest.approx(occupied.max(), abs=1e-12)


def test_si_residual_history_ends_below_tolerance(si_result):
    assert si_result.residual_history[-1] < si_result.residual_history[0]
    assert abs(si_result.energy_history[-1]) < 1e-9


def test_result_repr_shows_units(si_result):
    text = repr(si_result)
    assert "Ha" in text and "eV" in text and "converged" in text


def test_same_input_gives_bit_identical_energy(si_system, si_result):
    again = solidxc.scf(si_system, xc="lda,pw", tol=1e-9)
    assert again.energy == si_result.energy
    np.testing.assert_array_equal(again.density, si_result.density)


def test_k222_weights_and_threads_do_not_change_results():
    for symmetry, nk in ((False, 8), (True, 3)):
        system = solidxc.System(si_lattice(), si_atoms(), ecut=6.0, kpts=(2, 2, 2), symmetry=symmetry)
        one = solidxc.scf(system, tol=1e-8, threads=1)
        two = solidxc.scf(system, tol=1e-8, threads=2)
        assert one.kweights.sum() == pytest.approx(1.0, abs=1e-14)
        # Time reversal alone: every point of the unshifted 2x2x2 grid is its own partner; the
        # diamond point group leaves Gamma, L (4 points) and X (3 points), as ABINIT.
        assert one.nkpoints == nk
        assert sorted(np.round(one.kweights * 8).astype(int)) == ([1] * 8 if not symmetry else [1, 3, 4])
        assert one.energy == two.energy
        assert np.array_equal(one.density, two.density)
        assert one.density.sum() * system.dv == pytest.approx(8.0, abs=1e-8)


def test_concurrent_scf_from_python_threads_matches_sequential(si_system, si_result):
    results, failures = [None, None], []

    def run(i):
        try:
            results[i] = solidxc.scf(si_system, xc="lda,pw", tol=1e-9, threads=1)
        except Exception as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    for r in results:
        assert r.energy == pytest.approx(si_result.energy, abs=1e-12)


def test_nonconvergence_raises_with_history(si_system):
    with pytest.raises(solidxc.ConvergenceError) as excinfo:
        solidxc.scf(si_system, tol=1e-12, maxiter=2)
    error = excinfo.value
    assert error.history.shape == (2,) and np.all(error.history > 0)
    assert "not converged after 2 iterations" in str(error)
    assert "residual history" in str(error)


def test_nonconvergence_without_raise_returns_unconverged_result(si_system):
    r = solidxc.scf(si_system, tol=1e-12, maxiter=2, raise_on_nonconvergence=False)
    assert not r.converged and r.iterations == 2
    assert r.residual_history.shape == (2,)


def test_result_close_frees_the_handle(si_system):
    from solidxc import _lib
    r = solidxc.scf(si_system, tol=1e-6)
    handle = r.handle
    r.close()
    value = ctypes.c_double()
    assert _lib.load().sxc_result_energy(handle, ctypes.byref(value)) == solidxc.HandleError.status
    assert np.isfinite(r.energy)  # the numpy copies stay
    r.close()  # idempotent


def test_from_ase_converts_angstrom_once():
    ase_build = pytest.importorskip("ase.build")
    atoms = ase_build.bulk("Si", "diamond", a=5.431)
    system = solidxc.System.from_ase(atoms, ecut=8.0, kpts=(1, 1, 1))
    a = 5.431 * solidxc.units.ANGSTROM_IN_BOHR  # CODATA 2018
    assert system.volume == pytest.approx(a ** 3 / 4, rel=1e-14)
    assert system.symbols == ["Si", "Si"]
    np.testing.assert_allclose(system.positions[1], [a / 4] * 3, rtol=1e-14)
    np.testing.assert_allclose(system.lattice, np.array(si_lattice(a)), rtol=1e-14, atol=1e-14)
    direct = solidxc.System(si_lattice(), si_atoms(), ecut=8.0, kpts=(1, 1, 1))
    assert system.fft_size == direct.fft_size


def _cli(*args, cwd=REPO):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(os.path.dirname(os.path.dirname(solidxc.__file__))),
                                         env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "solidxc.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_cli_runs_examples_si_yaml_and_prints_the_total():
    proc = _cli("scf", str(REPO / "examples" / "si.yaml"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    total = [line for line in lines if line.startswith("total")]
    assert len(total) == 1
    energy_ha, energy_ev = map(float, total[0].split()[1:3])
    assert energy_ev == pytest.approx(energy_ha * solidxc.units.HARTREE_IN_EV, abs=1e-6)
    for name in TERMS + ["fermi level", "iterations", "converged"]:
        assert any(line.startswith(name) for line in lines), name
    assert "converged       yes" in proc.stdout


def test_cli_reports_unknown_yaml_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lattice: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\natoms: []\necut: 5\nsmear: 0.1\n")
    proc = _cli("scf", str(bad))
    assert proc.returncode == 2
    assert "unknown key 'smear'" in proc.stderr


def test_cli_reports_core_input_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lattice: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\natoms: [[Xx, [0, 0, 0]]]\necut: 5\n")
    proc = _cli("scf", str(bad))
    assert proc.returncode == 1
    assert "InputError: atoms[0].element: unknown element 'Xx'" in proc.stderr


def test_default_band_count_grows_until_the_top_band_is_empty():
    """fcc Ca (d states just above the Fermi level): the default 9 bands leave ~1e-5 electrons in
    the top band at some k-point, so the core reruns with more bands; an explicit nbands=9 is
    an error naming nbands instead."""
    a = 5.33 / 0.52917721092
    lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    system = solidxc.System(lattice, [("Ca", [0, 0, 0])], ecut=20, kpts=(4, 4, 4), smearing="fermi-dirac",
                            temperature=0.01, fft_size=(30, 30, 30))
    result = solidxc.scf(system, tol=1e-8)
    assert result.nbands > 9
    assert result.occupations[..., -1].max() < 1e-6
    with pytest.raises(solidxc.InputError, match="nbands"):
        solidxc.scf(system, tol=1e-8, nbands=9)

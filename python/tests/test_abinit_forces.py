"""Forces and stress against ABINIT 9.6.2 on strained, low-symmetry two-atom cells with both atoms displaced
(issue 6): Si (insulator), a doubled fcc Al cell (Fermi-Dirac metal), LDA and PBE, and
ferromagnetic bcc Fe (spin-polarised LDA, GTH-PADE q8). Same GTH pseudopotentials, Ecut, k-grid,
FFT grid, smearing and functional; the reference is the checked-in
``reference/abinit/forces/abinit_forces.json`` (decks and the script that made it next to it), so
this test does not need ABINIT.

ABINIT removes the mean force (the drift: the FFT grid's egg-box effect, 1e-4 Ha/bohr for Fe) from
its Cartesian forces, so the same mean is removed from SolidXC's before comparing; the means are
compared separately. Requirement: 1e-5 Ha/bohr per component. The stress tensor (ABINIT's
``cartesian_stress_tensor``, at a fixed plane-wave set with ``ecutsm 0``, as SolidXC's) is compared
component by component. Requirement: 1e-6 Ha/bohr^3.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import solidxc

REFERENCE = pathlib.Path(__file__).parent / "reference" / "abinit" / "forces" / "abinit_forces.json"
CASES = json.loads(REFERENCE.read_text())["cases"]
TOLERANCE = 1e-5  # Ha/bohr (issue 6)
STRESS_TOLERANCE = 1e-6  # Ha/bohr^3 (issue 6)


def system(case):
    return solidxc.System(case["lattice_bohr"], [(a["element"], a["cart_bohr"]) for a in case["atoms"]],
                          pseudo=case["pseudo"], ecut=case["ecut_Ha"], kpts=tuple(case["ngkpt"]),
                          kshift=tuple(case["shiftk"]), fft_size=tuple(case["ngfft"]),
                          smearing=case["smearing"], temperature=case["tsmear_Ha"],
                          magmoms=case["magmoms_muB"] if case["nsppol"] == 2 else None)


def params(slow_tags=("fe_",)):
    return [pytest.param(c, id=c["tag"], marks=pytest.mark.slow if c["tag"].startswith(slow_tags) else pytest.mark.fast)
            for c in CASES]


@pytest.mark.parametrize("case", params())
def test_forces_and_stress_match_abinit(case):
    result = solidxc.scf(system(case), xc=case["xc"], tol=1e-12, density_tol=1e-10, maxiter=300, nbands=case["nband"])
    forces = result.forces
    reference = np.array(case["forces_cart_Ha_per_bohr"])
    drift = forces.mean(axis=0)
    error = np.abs(forces - drift - reference).max()
    drift_error = np.abs(drift - np.array(case["drift_Ha_per_bohr"])).max()
    print(f"{case['tag']}: max |F - F_abinit| = {error:.2e} Ha/bohr (largest force {np.abs(reference).max():.4f}); "
          f"drift {drift.tolist()} vs ABINIT {case['drift_Ha_per_bohr']}; "
          f"E - E_abinit = {result.energy - case['etotal_Ha']:+.2e} Ha")
    stress_reference = np.array(case["stress_cart_Ha_per_bohr3"])
    stress_error = np.abs(result.stress - stress_reference).max()
    print(f"{case['tag']}: max |sigma - sigma_abinit| = {stress_error:.2e} Ha/bohr^3 "
          f"(largest component {np.abs(stress_reference).max():.2e})")
    assert np.abs(reference).max() > 1e-3
    assert np.abs(stress_reference).max() > 1e-4
    assert stress_error < STRESS_TOLERANCE
    assert error < TOLERANCE
    assert drift_error < TOLERANCE
    assert abs(result.energy - case["etotal_Ha"]) / len(case["atoms"]) < 2e-6
    if case["nsppol"] == 2:  # the same ferromagnetic state (ABINIT prints 6 decimals)
        assert abs(result.magnetization.total - case["total_magnetization_muB"]) < 1e-5

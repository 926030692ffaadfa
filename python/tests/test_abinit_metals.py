"""Free energies, Fermi levels, occupations and magnetisation against ABINIT 9.6.2 for metals.

Source: python/tests/reference/abinit/abinit_metals.json, made by
`python3 run_abinit.py --set metals` in python/tests/reference/abinit/ (decks in decks/, same GTH
parameters, Ecut, k-grid (kptopt 2, nsym 1: time reversal only), FFT grid, nband and smearing).
ABINIT's etotal is the Mermin free energy F = E - sigma S for every occopt; SolidXC's "entropy"
term is ABINIT's "-kT*entropy". Fermi levels and eigenvalues are compared after adding
psp_core / N_el to ABINIT's (SolidXC keeps the G = 0 average in the potential).
"""
import json
import pathlib

import numpy as np
import pytest

import solidxc

REFERENCE = pathlib.Path(__file__).parent / "reference" / "abinit" / "abinit_metals.json"
CASES = json.loads(REFERENCE.read_text())["cases"]
SMEARING = {3: "fermi-dirac", 4: "marzari-vanderbilt", 6: "methfessel-paxton", 7: "gaussian"}


def _tolerance(case):
    """Per atom: 1e-6 Ha for LDA, 2e-6 Ha for PBE (the [metals] issue)."""
    return 2e-6 if case["xc"] == "pbe" else 1e-6


def _run(case):
    magmoms = case.get("magmoms_muB") if case["nsppol"] == 2 else None
    system = solidxc.System(
        case["system"]["lattice_bohr"],
        [(a["element"], a["cart_bohr"]) for a in case["system"]["atoms"]],
        pseudo=case["pseudo"], ecut=case["ecut_Ha"], kpts=tuple(case["ngkpt"]), kshift=tuple(case["shiftk"]),
        fft_size=tuple(case["ngfft"]), smearing=SMEARING[case["occopt"]], temperature=case["tsmear_Ha"],
        magmoms=magmoms,
        # The decks use kptopt 2 + nsym 1 (time reversal only), so the k-point lists match;
        # test_symmetry.py checks the same energies with the space group on.
        symmetry=False,
    )
    return solidxc.scf(system, xc=case["xc"], tol=1e-11, maxiter=200, nbands=case["nband"])


_RESULTS = {}


def _result(case):
    if case["tag"] not in _RESULTS:
        _RESULTS[case["tag"]] = _run(case)
    return _RESULTS[case["tag"]]


PARAMS = [pytest.param(c, id=c["tag"]) for c in CASES]


@pytest.mark.parametrize("case", PARAMS)
def test_free_energy_matches_abinit(case):
    result = _result(case)
    assert result.converged
    natom = len(case["system"]["atoms"])
    error = abs(result.energy - case["etotal_Ha"]) / natom
    assert error < _tolerance(case), f"SolidXC {result.energy:.10f} vs ABINIT {case['etotal_Ha']:.10f} Ha"
    entropy = case["energy_components_Ha"]["minus_tsmear_times_entropy"]
    assert abs(result.energies["entropy"] - entropy) < 1e-6


@pytest.mark.parametrize("case", PARAMS)
def test_fermi_level_and_occupations_match_abinit(case):
    result = _result(case)
    shift = case["eigenvalue_shift_psp_core_over_nel_Ha"]
    assert abs(result.fermi_level - (case["fermie_Ha"] + shift)) < 1e-5
    theirs = np.asarray(case["occupations"])  # [nsppol][nk][nband]
    order = []
    for k in np.asarray(case["kpoints_reduced"]):
        matches = [i for i, q in enumerate(result.kpoints) for sgn in (1, -1)
                   if np.allclose(q - sgn * k, np.round(q - sgn * k), atol=1e-8)]
        assert matches, f"ABINIT k-point {k} missing"
        order.append(matches[0])
    assert np.max(np.abs(result.occupations[:, order, :] - theirs)) < 1e-4


@pytest.mark.parametrize("case", [pytest.param(c, id=c["tag"]) for c in CASES if c["nsppol"] == 2])
def test_magnetization_matches_abinit(case):
    result = _result(case)
    assert abs(result.magnetization.total - case["total_magnetization_muB"]) < 0.01
    assert abs(result.magnetization.absolute - case["absolute_magnetization_muB"]) < 0.01

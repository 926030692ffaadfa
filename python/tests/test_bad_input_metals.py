"""Bad input for metals and magnets: each gets a clear error (or a warning) naming the field."""
import warnings

import pytest

import solidxc
from solidxc import InputError

A_AL = 4.05 / 0.52917721092  # fcc Al, bohr


def al(**kwargs):
    lattice = [[0, A_AL / 2, A_AL / 2], [A_AL / 2, 0, A_AL / 2], [A_AL / 2, A_AL / 2, 0]]
    args = dict(lattice=lattice, atoms=[("Al", (0, 0, 0))], ecut=8.0, kpts=(2, 2, 2), smearing="fermi-dirac")
    args.update(kwargs)
    return solidxc.System(**args)


@pytest.mark.parametrize("width", [0.0, -0.01, float("nan"), float("inf")])
def test_smearing_width_must_be_positive_and_finite(width):
    with pytest.raises(InputError) as excinfo:
        al(temperature=width)
    assert str(excinfo.value).startswith("temperature")


def test_unknown_smearing_lists_the_known_ones():
    with pytest.raises(InputError) as excinfo:
        al(smearing="lorentzian")
    message = str(excinfo.value)
    assert message.startswith("smearing") and "fermi-dirac" in message


def test_temperature_without_smearing_is_refused():
    with pytest.raises(InputError) as excinfo:
        al(smearing=None, temperature=0.01)
    assert str(excinfo.value).startswith("temperature")


def test_more_electrons_than_the_bands_can_hold():
    with pytest.raises(InputError) as excinfo:
        solidxc.scf(al(), nbands=1)
    assert str(excinfo.value).startswith("nbands")


def test_magmoms_length_must_match_the_atoms():
    with pytest.raises(InputError) as excinfo:
        al(magmoms=[1.0, 0.5])
    message = str(excinfo.value)
    assert message.startswith("magmoms") and "2 entries for 1 atoms" in message


def test_magmom_larger_than_the_valence_charge_is_refused():
    with pytest.raises(InputError) as excinfo:
        al(magmoms=[4.0])
    assert str(excinfo.value).startswith("magmoms[0]")


def graphene(kpts, kshift=(0, 0, 0)):
    a = 2.46 / 0.52917721092
    c = 12.0 / 0.52917721092
    lattice = [[a, 0, 0], [-a / 2, a * 3 ** 0.5 / 2, 0], [0, 0, c]]
    atoms = [("C", (0, 0, 0)), ("C", (0, a / 3 ** 0.5, 0))]
    return solidxc.System(lattice, atoms, ecut=10.0, kpts=kpts, kshift=kshift, smearing="fermi-dirac")


def test_k_sampling_along_vacuum_warns_naming_the_direction():
    with pytest.warns(UserWarning, match=r"kpts/kshift: direction 3 has .* bohr of vacuum"):
        graphene((3, 3, 1), kshift=(0, 0, 0.5))
    with pytest.warns(UserWarning, match="direction 3"):
        graphene((3, 3, 2))


def test_slab_k_grid_without_vacuum_sampling_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphene((3, 3, 1), kshift=(0.5, 0.5, 0))

"""Unit conversions at the Python boundary (CODATA 2018), defined once.

Inside SolidXC everything is atomic units: bohr, Hartree, electrons. Ångström and eV appear
only here and in what Python prints.
"""

#: Bohr radius in Ångström (CODATA 2018).
BOHR_IN_ANGSTROM = 0.529177210903
#: Hartree energy in eV (CODATA 2018).
HARTREE_IN_EV = 27.211386245988

ANGSTROM_IN_BOHR = 1.0 / BOHR_IN_ANGSTROM
EV_IN_HARTREE = 1.0 / HARTREE_IN_EV


def angstrom_to_bohr(x):
    """Lengths: Å -> bohr (works on numbers and numpy arrays)."""
    return x * ANGSTROM_IN_BOHR


def bohr_to_angstrom(x):
    """Lengths: bohr -> Å."""
    return x * BOHR_IN_ANGSTROM


def hartree_to_ev(x):
    """Energies: Ha -> eV."""
    return x * HARTREE_IN_EV


def ev_to_hartree(x):
    """Energies: eV -> Ha."""
    return x * EV_IN_HARTREE

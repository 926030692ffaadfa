"""An ASE calculator: ``SolidXC(xc=..., ecut=..., kpts=..., smearing=...)``.

::

    from ase.build import bulk
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from solidxc.ase import SolidXC

    atoms = bulk("Al", "fcc", a=4.10)
    atoms.calc = SolidXC(xc="pbe", ecut=20, kpts=(8, 8, 8), smearing="fermi-dirac", temperature=0.01)
    BFGS(FrechetCellFilter(atoms)).run(fmax=1e-3)

**Units.** ASE's units at this boundary: the results are in eV, eV/Å and eV/Å^3, converted once from the
core's Hartree and bohr with :mod:`solidxc.units` (CODATA 2018). The *input* parameters keep SolidXC's
native atomic units, as :class:`solidxc.System` and :func:`solidxc.scf` take them: ``ecut`` and
``temperature`` are in **Hartree** (ecut = 20 Ha = 544 eV = 40 Ry), ``tol`` in Hartree per cell.

**Energies.** ``free_energy`` is the Mermin free energy E - TS, the energy whose derivatives the forces
and the stress are. ``energy`` is ASE's "energy extrapolated to zero smearing" (as in GPAW and VASP):
``SCFResult.energy_zero_width``; without smearing both are the same. ``atoms.get_potential_energy()``
returns ``energy``; use ``get_potential_energy(force_consistent=True)`` (the free energy) for anything
compared with forces or stress, e.g. an equation of state that should agree with a cell relaxation.

**Warm start.** Each SCF starts from the previous result of this calculator (its density when the FFT
grid and spin match, its orbitals when the k-points and bands match), as long as the atoms' elements,
initial magnetic moments and charges are unchanged, so the steps of a relaxation cost a few iterations
each. The core picks the FFT grid from the cell, so during a cell relaxation it can change from one step
to the next (the warm start then keeps only the orbitals, and the energy jumps by the change in the
real-space quadrature); fix ``fft_size`` for a cell relaxation, e.g. to
``calc.default_fft_size(largest_cell)``.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes, kptdensity2monkhorstpack

from . import functional as _functional
from .errors import InputError
from .scf import SCFResult, scf
from .system import System
from .units import BOHR_IN_ANGSTROM, HARTREE_IN_EV

#: Pseudopotential table per functional family when ``pseudo`` is not given.
DEFAULT_PSEUDO = {_functional.LDA: "gth-pade", _functional.GGA: "gth-pbe"}

#: Ha/bohr -> eV/Å and Ha/bohr^3 -> eV/Å^3.
FORCE_UNIT = HARTREE_IN_EV / BOHR_IN_ANGSTROM
STRESS_UNIT = HARTREE_IN_EV / BOHR_IN_ANGSTROM ** 3

#: Parameters passed to :class:`solidxc.System` and to :func:`solidxc.scf` as they are.
_SYSTEM_KEYS = ("ecut", "kshift", "fft_size", "smearing", "temperature", "magmoms", "charge", "symmetry")
_SCF_KEYS = ("tol", "density_tol", "maxiter", "nbands", "mixing_beta", "kerker_q0", "threads", "xc_parameters",
             "memory_limit_bytes", "verbose")


def _real(name: str, value: Any, *, positive: bool = False, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name}: expected a finite number, got {value!r}", 1)
    if positive and not value > 0:
        raise InputError(f"{name}: must be > 0, got {value!r}", 1)
    if minimum is not None and value < minimum:
        raise InputError(f"{name}: must be >= {minimum}, got {value!r}", 1)
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}", 1)
    return int(value)


def _triple(name: str, value: Any, item) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        raise InputError(f"{name}: expected 3 values (one per lattice vector), got {value!r}", 1)
    if len(value) != 3:
        raise InputError(f"{name}: expected 3 values (one per lattice vector), got {len(value)}: {value!r}", 1)
    return tuple(item(f"{name}[{i}]", v) for i, v in enumerate(value))


def _check_kpts(value: Any) -> Any:
    """A Monkhorst-Pack grid: n (n x n x n), (n1, n2, n3), or a dict {"size": (n1, n2, n3)} or
    {"density": k-points per Å^-1, "even": bool} in ASE's sense (grid chosen per cell, Gamma-centred)."""
    if isinstance(value, dict):
        unknown = set(value) - {"size", "density", "even", "gamma"}
        if unknown or ("size" in value) == ("density" in value):
            raise InputError(f"kpts: a dict needs exactly one of 'size' or 'density' (optional 'even'; 'gamma': True), "
                             f"got {value!r}", 1)
        if value.get("gamma", True) is not True:
            raise InputError("kpts: the grid is Gamma-centred unless kshift says otherwise; 'gamma' may only be True", 1)
        if "size" in value:
            return {"size": _triple("kpts['size']", value["size"], _positive_int)}
        return {"density": _real("kpts['density']", value["density"], positive=True),
                "even": value.get("even")}
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * 3
    return _triple("kpts", value, _positive_int)


def _optional(check):
    return lambda name, value: None if value is None else check(name, value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected True or False, got {value!r}", 1)
    return bool(value)


def _check_string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name}: expected a name or None, got {value!r}", 1)
    return value


def _check_xc(name: str, value: Any) -> Any:
    if isinstance(value, str) or hasattr(value, "as_registered") or hasattr(value, "name"):
        return value
    raise InputError(f"xc: expected a functional name, a solidxc.functional.Builtin, RegisteredFunctional or torch "
                     f"module (NNLDA, NNPBE, HybridXC), got {type(value).__name__}", 1)


def _pass(name: str, value: Any) -> Any:
    """Checked by the core when the system or the SCF is built (the message names the field)."""
    return value


#: Parameter -> check (name, value) -> normalised value. Everything else is refused by name.
_CHECKS = {
    "xc": _check_xc,
    "pseudo": _pass,
    "ecut": lambda n, v: _real(n, v, positive=True),
    "kpts": lambda n, v: _check_kpts(v),
    "kshift": lambda n, v: _triple(n, v, lambda m, x: _real(m, x)),
    "fft_size": _optional(lambda n, v: _triple(n, v, _positive_int)),
    "smearing": _optional(_check_string),
    "temperature": _optional(lambda n, v: _real(n, v, minimum=0.0)),
    "magmoms": _pass,
    "charge": _optional(lambda n, v: _real(n, v)),
    "symmetry": _check_bool,
    "tol": lambda n, v: _real(n, v, positive=True),
    "density_tol": _optional(lambda n, v: _real(n, v, positive=True)),
    "maxiter": _positive_int,
    "nbands": _optional(_positive_int),
    "mixing_beta": _optional(lambda n, v: _real(n, v, positive=True)),
    "kerker_q0": _optional(lambda n, v: _real(n, v, minimum=0.0)),
    "threads": _optional(_positive_int),
    "xc_parameters": _pass,
    "memory_limit_bytes": _optional(lambda n, v: _real(n, v, positive=True)),
    "verbose": _check_bool,
    "warm_start": _check_bool,
}


def _same(a: Any, b: Any) -> bool:
    """Parameter equality, without asking numpy to compare functional objects (torch modules) elementwise."""
    if a is b:
        return True
    if isinstance(a, dict) or isinstance(b, dict):
        return a == b
    plain = (str, numbers.Number, tuple, list, np.ndarray)
    return isinstance(a, plain) and isinstance(b, plain) and bool(np.array_equal(a, b))


class SolidXC(Calculator):
    """SolidXC's plane-wave Kohn-Sham DFT as an ASE calculator: energy (eV), forces (eV/Å), stress (eV/Å^3,
    Voigt order xx, yy, zz, yz, xz, xy) and, with spin, the total magnetic moment (Bohr magnetons).

    Parameters (keywords; all can be changed later with :meth:`set`, which discards the results)
    ----------
    xc : str or functional
        ``"pbe"`` (default), ``"lda,pw"``, ``"lda,vwn"``, ``"teter"``, a registered name, or a
        :class:`solidxc.functional.Builtin`, ``RegisteredFunctional`` or torch module (``NNLDA``, ``NNPBE``,
        ``HybridXC``), as for :func:`solidxc.scf`.
    pseudo : str, path or dict, optional
        GTH table, CP2K-format file, or dict element -> either. Default: from the functional's family,
        ``"gth-pbe"`` for a GGA and ``"gth-pade"`` for an LDA.
    ecut : float
        Plane-wave cutoff, **Hartree** (default 20 Ha = 544 eV).
    kpts : int, (3,) ints or dict
        Monkhorst-Pack grid, Gamma-centred (default (4, 4, 4)); n means n x n x n. ASE-style
        ``{"density": d}`` (k-points per Å^-1, optional ``"even": True``) chooses the grid from each cell,
        so it can change during a cell relaxation; ``{"size": (n1, n2, n3)}`` is a fixed grid.
    kshift : (3,) floats
        Shift of the k-grid, ABINIT's convention k = (n + shift) / N (default none).
    smearing : str, optional
        ``"fermi-dirac"``, ``"gaussian"``, ``"methfessel-paxton"`` or ``"marzari-vanderbilt"``; None (default)
        for integer occupations.
    temperature : float, optional
        Smearing width, **Hartree** (kT for Fermi-Dirac); None means 0.01 Ha when ``smearing`` is set.
    magmoms : sequence of float, optional
        Initial moments per atom, Bohr magnetons (turn on collinear spin). Default: the atoms' initial
        magnetic moments when any is non-zero.
    charge : float, optional
        Net charge of the cell. Default: the sum of the atoms' initial charges.
    symmetry : bool
        Use the crystal's space group (default True).
    fft_size : (3,) ints, optional
        FFT grid; default the core's smallest grid for each cell (see the module docstring on relaxations).
    tol, density_tol, maxiter, nbands, mixing_beta, kerker_q0, threads, xc_parameters, memory_limit_bytes, verbose
        Passed to :func:`solidxc.scf` (``tol`` in Ha per cell, default 1e-9).
    warm_start : bool
        Start each SCF from the previous result when the atoms changed only in positions or cell (default True).

    Raises
    ------
    InputError
        An unknown keyword or a bad value (the message names the parameter), here or, for what only the core
        can judge, at the first calculation.
    ConvergenceError
        The SCF did not converge; no energy is returned.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "magmom"]
    default_parameters = {
        "xc": "pbe", "pseudo": None, "ecut": 20.0, "kpts": (4, 4, 4), "kshift": (0.0, 0.0, 0.0), "fft_size": None,
        "smearing": None, "temperature": None, "magmoms": None, "charge": None, "symmetry": True,
        "tol": 1e-9, "density_tol": None, "maxiter": 100, "nbands": None, "mixing_beta": None, "kerker_q0": None,
        "threads": None, "xc_parameters": None, "memory_limit_bytes": None, "verbose": False, "warm_start": True,
    }

    def __init__(self, *, atoms: Any = None, label: str | None = None, **kwargs: Any):
        self._result: SCFResult | None = None  # the SCF of self.atoms
        self._previous: tuple[Any, SCFResult] | None = None  # (species key, result) to warm-start from
        super().__init__(atoms=atoms, label=label)
        self.set(**kwargs)

    # ---- parameters ------------------------------------------------------------------------------------

    def set(self, **kwargs: Any) -> dict:
        """Sets parameters, checked by name; any change discards the results and the warm start.
        Returns the changed parameters."""
        unknown = sorted(set(kwargs) - set(_CHECKS))
        if unknown:
            raise InputError(f"{unknown[0]}: not a parameter of solidxc.ase.SolidXC; expected one of "
                             f"{', '.join(sorted(_CHECKS))}", 1)
        checked = {key: _CHECKS[key](key, value) for key, value in kwargs.items()}
        changed = {key: value for key, value in kwargs.items() if not _same(checked[key], self.parameters.get(key))}
        for key in changed:
            self.parameters[key] = checked[key]
        if changed:
            self.reset()
            self._previous = None
        return changed

    def todict(self, skip_default: bool = True) -> dict:
        """The parameters as plain values (a functional object by its repr), e.g. for a trajectory file."""
        out = {}
        for key, value in self.parameters.items():
            if skip_default and _same(value, self.default_parameters.get(key, object())):
                continue
            out[key] = value if key != "xc" or isinstance(value, str) else repr(value)
        return out

    def reset(self) -> None:
        super().reset()
        self._result = None

    # ---- the calculation -------------------------------------------------------------------------------

    def pseudo(self) -> Any:
        """The pseudopotential in use: ``pseudo`` if given, else the table for the functional's family."""
        if self.parameters["pseudo"] is not None:
            return self.parameters["pseudo"]
        xc = self.parameters["xc"]
        family = getattr(xc, "family", None)
        if family not in DEFAULT_PSEUDO:
            family = _functional.info(xc)["family"]
        return DEFAULT_PSEUDO[family]

    def system(self, atoms: Any) -> System:
        """The :class:`solidxc.System` this calculator builds for ``atoms`` (Å -> bohr; validated by the core)."""
        if not np.all(atoms.pbc):
            raise InputError(f"atoms.pbc: SolidXC is periodic along all three lattice vectors, got pbc={atoms.pbc}; "
                             f"set atoms.pbc = True (a slab is a periodic cell with vacuum)", 1)
        p = self.parameters
        kpts = p["kpts"]
        if isinstance(kpts, dict):
            kpts = kpts["size"] if "size" in kpts else tuple(
                int(n) for n in kptdensity2monkhorstpack(atoms, kptdensity=kpts["density"], even=kpts["even"]))
        return System.from_ase(atoms, pseudo=self.pseudo(), kpts=kpts, **{key: p[key] for key in _SYSTEM_KEYS})

    def default_fft_size(self, atoms: Any) -> tuple[int, int, int]:
        """The FFT grid the core would choose for ``atoms`` with these parameters (ignoring ``fft_size``):
        for a cell relaxation, fix ``fft_size`` to the grid of the largest cell it may visit."""
        saved = self.parameters["fft_size"]
        try:
            self.parameters["fft_size"] = None
            return tuple(self.system(atoms).fft_size)
        finally:
            self.parameters["fft_size"] = saved

    def calculate(self, atoms: Any = None, properties: Sequence[str] = ("energy",),
                  system_changes: Sequence[str] = tuple(all_changes)) -> None:
        super().calculate(atoms, properties, system_changes)
        if self._result is None or system_changes:
            self._result = self._run_scf(self.atoms)
        result = self._result
        self.results["free_energy"] = result.energy * HARTREE_IN_EV
        self.results["energy"] = result.energy_zero_width * HARTREE_IN_EV
        self.results["magmom"] = result.magnetization.total
        if "forces" in properties:
            self.results["forces"] = result.forces * FORCE_UNIT
        if "stress" in properties:
            stress = getattr(result, "stress", None)
            if stress is None:
                raise PropertyNotImplementedError("stress: the loaded libsolidxc/solidxc has no stress tensor "
                                                  "(SCFResult.stress)")
            sigma = np.asarray(stress, dtype=float) * STRESS_UNIT
            self.results["stress"] = sigma.flat[[0, 4, 8, 5, 2, 1]].copy()  # Voigt: xx yy zz yz xz xy

    def _run_scf(self, atoms: Any) -> SCFResult:
        system = self.system(atoms)
        p = self.parameters
        key = (tuple(atoms.numbers), tuple(np.ravel(atoms.get_initial_magnetic_moments())), system.magmoms,
               system.charge)
        start = None
        if p["warm_start"] and self._previous is not None and self._previous[0] == key:
            start = self._previous[1]
        options = {k: p[k] for k in _SCF_KEYS if p[k] is not None}
        result = scf(system, p["xc"], start=start, **options)  # raises ConvergenceError if not converged
        self._previous = (key, result)
        return result

    # ---- what ASE's DOS and band-structure tools read --------------------------------------------------

    @property
    def scf_result(self) -> SCFResult:
        """The :class:`solidxc.SCFResult` of the last calculation (atomic units)."""
        if self._result is None:
            raise PropertyNotImplementedError("scf_result: no calculation yet (call atoms.get_potential_energy())")
        return self._result

    def get_number_of_spins(self) -> int:
        return self.scf_result.nspin

    def get_spin_polarized(self) -> bool:
        return self.scf_result.nspin == 2

    def get_ibz_k_points(self) -> np.ndarray:
        """Irreducible k-points, reduced coordinates."""
        return self.scf_result.kpoints.copy()

    def get_k_point_weights(self) -> np.ndarray:
        return self.scf_result.kweights.copy()

    def get_eigenvalues(self, kpt: int = 0, spin: int = 0) -> np.ndarray:
        """Kohn-Sham eigenvalues at irreducible k-point ``kpt``, eV."""
        return self.scf_result.eigenvalues[spin, kpt] * HARTREE_IN_EV

    def get_occupation_numbers(self, kpt: int = 0, spin: int = 0) -> np.ndarray:
        """Electrons per state (up to 2 without spin)."""
        return self.scf_result.occupations[spin, kpt].copy()

    def get_fermi_level(self) -> float:
        """eV."""
        return self.scf_result.fermi_level * HARTREE_IN_EV

    def band_structure(self, path: Any = None, npoints: int = 100, nbands: int | None = None):
        """Non-self-consistent bands of the last SCF along ``path`` as an ASE
        ``ase.spectrum.band_structure.BandStructure`` (eV; ``.plot()``): ``path`` is an ASE ``BandPath``
        (e.g. ``atoms.cell.bandpath("GXWKGL", npoints=100)``), a string of special points, or None for
        ASE's default path of the lattice. See :func:`solidxc.bands.band_structure`."""
        return self.scf_result.band_structure(path, npoints=npoints, nbands=nbands).to_ase()

    def get_magnetic_moment(self, atoms: Any = None) -> float:
        return self.get_property("magmom", atoms)

    def __repr__(self) -> str:
        text = ", ".join(f"{key}={value!r}" for key, value in self.todict().items())
        return f"SolidXC({text}) [ecut, temperature in Ha; results in eV, eV/Å, eV/Å^3]"

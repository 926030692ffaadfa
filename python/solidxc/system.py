"""`System`: a crystal (lattice, atoms, pseudopotentials, Ecut, k-grid) validated by the core."""

from __future__ import annotations

import ctypes
import json
import os
import warnings
import weakref
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

from . import _lib
from .errors import InputError
from .units import ANGSTROM_IN_BOHR

PseudoLike = Union[str, "os.PathLike[str]", Mapping[str, str]]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays -> Python numbers and lists, for JSON. Types are not judged
    here: the core reports a wrong type by field."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _pseudo_json(pseudo: PseudoLike) -> Any:
    """Table names pass through; file paths become absolute so the core can open them."""
    if isinstance(pseudo, Mapping):
        return {str(k): _pseudo_json(v) for k, v in pseudo.items()}
    if isinstance(pseudo, os.PathLike) or (isinstance(pseudo, str) and os.path.isfile(pseudo)):
        return os.path.abspath(os.fspath(pseudo))
    return _plain(pseudo)


def _atoms_json(atoms: Iterable[Any]) -> list:
    out = []
    for i, atom in enumerate(atoms):
        if isinstance(atom, Mapping):
            out.append(_plain(dict(atom)))
            continue
        try:
            if isinstance(atom, (str, bytes)):
                raise TypeError
            element, position = atom
        except (TypeError, ValueError):
            raise InputError(f"atoms[{i}]: expected (element, (x, y, z)) in bohr, got {atom!r}", 1) from None
        out.append({"element": _plain(element), "position": _plain(position)})
    return out


def _to_json(obj: Any) -> str:
    def default(o):
        o = _plain(o)
        if isinstance(o, (str, int, float, bool, list, dict)) or o is None:
            return o
        raise TypeError(f"cannot convert {type(o).__name__} {o!r} to JSON")
    try:
        return json.dumps(obj, default=default)
    except (TypeError, ValueError) as exc:
        raise InputError(f"system: {exc}", 1) from None


#: A gap between atoms wider than this along a lattice direction (bohr) is taken as vacuum.
VACUUM_GAP_BOHR = 10.0


def _warn_vacuum_sampling(lattice: np.ndarray, positions: np.ndarray, kpts: Sequence[int],
                          kshift: Sequence[float]) -> None:
    """Warns when the k-grid samples or shifts along a vacuum direction (a slab or a 2D crystal).

    Along a direction with vacuum, the bands have no dispersion, so k-points there only cost time,
    and a shift is almost always a mistake carried over from a bulk input.
    """
    if len(positions) == 0:
        return
    inverse = np.linalg.inv(lattice)
    fractional = np.mod(positions @ inverse, 1.0)
    for i in range(3):
        coords = np.sort(fractional[:, i])
        gaps = np.diff(np.concatenate([coords, [coords[0] + 1.0]]))
        vacuum = float(np.max(gaps)) * float(np.linalg.norm(lattice[i]))
        if vacuum > VACUUM_GAP_BOHR and (int(kpts[i]) > 1 or float(kshift[i]) != 0.0):
            warnings.warn(f"kpts/kshift: direction {i + 1} has {vacuum:.1f} bohr of vacuum, yet the k-grid "
                          f"samples it (kpts[{i}] = {kpts[i]}, kshift[{i}] = {kshift[i]}); use kpts[{i}] = 1 "
                          f"and kshift[{i}] = 0 for a slab or 2D crystal", stacklevel=3)


def _free_system(handle: int) -> None:
    try:
        _lib.load().sxc_system_free(handle)
    except Exception:  # interpreter shutdown: nothing to report to
        pass


class System:
    """A periodic system, validated by the core when it is created.

    Parameters
    ----------
    lattice : (3, 3) array_like
        Lattice vectors as rows, bohr.
    atoms : sequence of (str, (3,) array_like)
        Element symbol and Cartesian position in bohr, e.g. ``[("Si", (0, 0, 0)), ...]``.
    pseudo : str, path or dict
        One GTH table for every element (``"gth-pade"`` for LDA, ``"gth-pbe"``), a path to a
        CP2K-format file, or a dict element -> table name or path.
    ecut : float
        Plane-wave cutoff, Ha.
    kpts : (3,) ints
        Monkhorst-Pack grid.
    kshift : (3,) floats
        Shift of the k-grid, ABINIT's convention k = (n + shift) / N.
    fft_size : (3,) ints or None
        Explicit FFT grid, or None for the smallest one that holds the density sphere.
    charge : float
        Net charge of the cell (+1 removes one electron).
    smearing : str or None
        Occupation smearing for metals: ``"fermi-dirac"``, ``"gaussian"``,
        ``"methfessel-paxton"`` or ``"marzari-vanderbilt"``; None for integer occupations.
    temperature : float or None
        Smearing width, Ha (kT for Fermi-Dirac); None means 0.01 Ha when ``smearing`` is set.
    magmoms : sequence of float or None
        Initial magnetic moment per atom, Bohr magnetons; setting it turns on collinear spin.
    symmetry : bool
        Use the crystal's space group (default): k-points reduced to the irreducible wedge and
        the density symmetrised. ``False`` keeps time reversal only; results agree to ~1e-10 Ha.
    basis_lattice : (3, 3) array_like or None
        A reference cell (rows, bohr) whose metric selects the plane waves, |k+G|^2/2 <= ecut
        measured in it; None uses ``lattice``. A strained cell with the reference's
        ``basis_lattice`` (and the same ``fft_size``) keeps the reference's plane-wave set: the
        set at which the analytic stress is the derivative of the energy.

    Raises
    ------
    InputError
        The core's validation failed; the message names the field.
    """

    def __init__(self, lattice: Any, atoms: Sequence[Any], pseudo: PseudoLike = "gth-pade",
                 ecut: float = 20.0, kpts: Sequence[int] = (4, 4, 4), kshift: Sequence[float] = (0, 0, 0),
                 fft_size: Sequence[int] | None = None, charge: float = 0, smearing: str | None = None,
                 temperature: float | None = None, magmoms: Sequence[float] | None = None,
                 symmetry: bool = True, basis_lattice: Any = None):
        atoms = list(atoms)
        spec = {
            "lattice": _plain(lattice),
            "atoms": _atoms_json(atoms),
            "pseudo": _pseudo_json(pseudo),
            "ecut": _plain(ecut),
            "kpts": _plain(kpts),
            "kshift": _plain(kshift),
            "fft_size": _plain(fft_size),
            "charge": _plain(charge),
            "smearing": _plain(smearing),
            "temperature": _plain(temperature),
            "magmoms": _plain(magmoms),
            "symmetry": _plain(symmetry),
            "basis_lattice": _plain(basis_lattice),
        }
        self._json = _to_json(spec)
        lib = _lib.load()
        handle = ctypes.c_void_p()
        _lib.check(lib.sxc_system_create(self._json.encode(), ctypes.byref(handle)))
        self._handle = handle.value
        self._finalizer = weakref.finalize(self, _free_system, self._handle)

        self.lattice = np.array(lattice, dtype=float)
        self.symbols = [a["element"] for a in spec["atoms"]]
        self.positions = np.array([a["position"] for a in spec["atoms"]], dtype=float)
        self.pseudo = spec["pseudo"]
        self.ecut = float(ecut)
        self.kpts = tuple(int(k) for k in spec["kpts"])
        self.kshift = tuple(float(s) for s in spec["kshift"])
        self.charge = float(charge)
        self.smearing = smearing
        self.temperature = None if temperature is None else float(temperature)
        self.magmoms = None if magmoms is None else [float(m) for m in magmoms]
        self.symmetry = bool(symmetry)
        self.basis_lattice = None if basis_lattice is None else np.array(basis_lattice, dtype=float)
        _warn_vacuum_sampling(self.lattice, self.positions, self.kpts, self.kshift)

        volume = ctypes.c_double()
        nelectrons = ctypes.c_double()
        fft = (ctypes.c_int * 3)()
        _lib.check(lib.sxc_system_volume(self._handle, ctypes.byref(volume)))
        _lib.check(lib.sxc_system_nelectrons(self._handle, ctypes.byref(nelectrons)))
        _lib.check(lib.sxc_system_fft_size(self._handle, fft))
        #: Cell volume, bohr^3.
        self.volume = volume.value
        #: Valence electrons in the cell (after ``charge``).
        self.nelectrons = nelectrons.value
        #: FFT grid (n1, n2, n3) the SCF uses.
        self.fft_size = tuple(fft)
        nops, nk = ctypes.c_int(), ctypes.c_int()
        _lib.check(lib.sxc_system_symmetry(self._handle, ctypes.byref(nops), ctypes.byref(nk)))
        #: Space-group operations in use (1 with ``symmetry=False``).
        self.symmetry_operations = nops.value
        #: Irreducible k-points the SCF computes.
        self.nkpoints = nk.value

    @classmethod
    def from_ase(cls, atoms: Any, pseudo: PseudoLike = "gth-pade", ecut: float = 20.0,
                 kpts: Sequence[int] = (4, 4, 4), kshift: Sequence[float] = (0, 0, 0),
                 fft_size: Sequence[int] | None = None, charge: float | None = None,
                 smearing: str | None = None, temperature: float | None = None,
                 magmoms: Sequence[float] | None = None, symmetry: bool = True) -> "System":
        """A `System` from an ``ase.Atoms`` (Å), converted to bohr once.

        ``charge`` defaults to the sum of the ASE atoms' initial charges, and ``magmoms`` to
        their initial magnetic moments when any is non-zero.
        """
        cell = np.asarray(atoms.get_cell(), dtype=float) * ANGSTROM_IN_BOHR
        positions = np.asarray(atoms.get_positions(), dtype=float) * ANGSTROM_IN_BOHR
        symbols = atoms.get_chemical_symbols()
        if charge is None:
            charge = float(np.sum(atoms.get_initial_charges()))
        if magmoms is None:
            initial = np.asarray(atoms.get_initial_magnetic_moments(), dtype=float)
            magmoms = list(initial) if initial.ndim == 1 and np.any(initial != 0) else None
        return cls(cell, list(zip(symbols, positions)), pseudo=pseudo, ecut=ecut, kpts=kpts,
                   kshift=kshift, fft_size=fft_size, charge=charge, smearing=smearing,
                   temperature=temperature, magmoms=magmoms, symmetry=symmetry)

    @classmethod
    def from_json(cls, text: "str | bytes") -> "System":
        """A `System` from the JSON of ``sxc_system_create`` (the inverse of :meth:`to_json`).

        The core reads the text first, so malformed, oversized (> 4 MiB) or too deeply nested
        (> 64 levels) JSON, unknown keys and wrong types raise :class:`InputError` naming the
        offset or the field, exactly as through the C ABI. Keys left out take the C ABI's
        defaults (``kpts`` [1, 1, 1], ...).
        """
        raw = text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else bytes(text)
        lib = _lib.load()
        handle = ctypes.c_void_p()
        _lib.check(lib.sxc_system_create(raw, ctypes.byref(handle)))
        _free_system(handle.value)
        spec = json.loads(raw)
        spec.setdefault("kpts", [1, 1, 1])
        atoms = [(a["element"], a["position"]) for a in spec.pop("atoms")]
        return cls(atoms=atoms, **spec)

    @property
    def atoms(self) -> list[tuple[str, np.ndarray]]:
        """[(element, position in bohr), ...]."""
        return list(zip(self.symbols, self.positions))

    @property
    def dv(self) -> float:
        """Volume element of the FFT grid, bohr^3 (volume / n1 n2 n3): sum(rho) * dv = N_el."""
        return self.volume / float(np.prod(self.fft_size))

    @property
    def formula(self) -> str:
        counts = Counter(self.symbols)
        return "".join(f"{el}{n if n > 1 else ''}" for el, n in counts.items())

    @property
    def handle(self) -> int:
        """The C ABI handle (``sxc_system*``), valid while this object lives."""
        return self._handle

    def to_json(self) -> str:
        """The JSON this system was created from (the input of ``sxc_system_create``)."""
        return self._json

    def __repr__(self) -> str:
        kpts = "x".join(str(k) for k in self.kpts)
        fft = "x".join(str(n) for n in self.fft_size)
        pseudo = self.pseudo if isinstance(self.pseudo, str) else dict(self.pseudo)
        return (f"System({self.formula}, volume={self.volume:.4f} bohr^3, nelectrons={self.nelectrons:g}, "
                f"ecut={self.ecut:g} Ha, kpts={kpts}, fft={fft}, pseudo={pseudo!r})")

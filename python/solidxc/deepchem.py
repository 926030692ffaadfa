"""DeepChem's DFT training API for crystals: ``DFTSystem``, ``DFTEntry``, ``DFTYamlLoader``,
``XCModel``, ``HybridXC``, ``NNLDA``, ``NNPBE`` (after deepchem/feat/dft_data.py and
deepchem/models/dft/ in DeepChem 2.8), running SolidXC's plane-wave SCF.

::

    from solidxc.deepchem import DFTYamlLoader, XCModel
    dataset = DFTYamlLoader().create_dataset(solidxc.data.path("small.yaml"))
    model = XCModel("gga_x_pbe + gga_c_pbe", batch_size=2, model_dir="run")
    model.fit(dataset, nb_epoch=3)
    model.predict(dataset)                          # one value per entry (a0 in bohr, E in Ha, ...)

A system is DeepChem's dictionary (``moldesc`` in bohr, ``spin``, ``charge``, ``number``) plus
the periodic keys ``alattice`` (3x3, bohr, rows are lattice vectors), ``pseudo``, ``ecut``,
``kpts``, ``kshift``, ``smearing``, ``temperature``, ``magmoms`` (and ``nbands``,
``symmetry``), or a structure file (CIF, POSCAR: anything ASE reads) given as the dictionary's
``structure`` or as the whole system. ``basis`` is ``"pw"`` (plane waves, the default).

Entry types: DeepChem's ``ae`` and ``ie`` (sum_i n_i E_i - 2 n_0 E_0) and ``dens`` (the density
on the FFT grid against a ``.npy`` reference), and for crystals ``energy`` (free energy per
cell, Ha), ``lattice`` (equilibrium lattice constant, bohr, from a differentiable equation-of-state
fit over scale factors), ``gap`` (band gap, Ha) and ``eig`` (selected band energies, Ha).

``XCModel`` subclasses ``deepchem.models.TorchModel`` when DeepChem is installed (``fit``,
``predict``, ``evaluate``, ``restore`` and checkpoints are DeepChem's); without DeepChem the same
methods come from a small standalone implementation. Unlike DeepChem 2.8, every entry of a batch
enters the loss, the HybridXC weights are created once (not reset by every forward pass), and an
entry whose SCF or response solve fails is skipped with a warning and counted
(``model.model.failures``), or raises with ``on_failure="raise"``.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from . import torch as _sxc_torch  # noqa: F401  (imports torch; this module needs it)
from .errors import InputError, SolidXCError
from .functional import GGA, LDA, Builtin, HybridXC, NNLDA, NNPBE  # noqa: F401  (re-exported)
from .system import System
from .units import BOHR_IN_ANGSTROM

import torch

__all__ = ["DFTSystem", "DFTEntry", "DFTYamlLoader", "XCModel", "DFTXC", "XCNNSCF", "KSCalc", "EntryError",
           "construct_nn_model", "default_nnmodel",
           "EntryDataset", "make_dataset", "HybridXC", "NNLDA", "NNPBE", "equilibrium_scale", "HAVE_DEEPCHEM"]

try:  # DeepChem is optional: XCModel subclasses its TorchModel when it is installed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from deepchem.models.torch_models.torch_model import TorchModel as _TorchModel
        from deepchem.data import DiskDataset as _DiskDataset
    HAVE_DEEPCHEM = True
except Exception:  # pragma: no cover - depends on the environment
    _TorchModel = None
    _DiskDataset = None
    HAVE_DEEPCHEM = False


class EntryError(SolidXCError):
    """An entry could not be evaluated (its SCF or response solve failed, or its value is undefined)."""

    status = 1


#: Default scan of a ``lattice`` entry: 5 linear scale factors of the reference cell.
DEFAULT_SCALES = (0.97, 0.985, 1.0, 1.015, 1.03)

_PERIODIC_KEYS = ("pseudo", "ecut", "kpts", "kshift", "smearing", "temperature", "magmoms", "fft_size", "symmetry")
_SYMBOLS = None


def _symbol(z: int) -> str:
    global _SYMBOLS
    if _SYMBOLS is None:
        try:
            from ase.data import chemical_symbols
            _SYMBOLS = list(chemical_symbols)
        except ImportError as exc:  # pragma: no cover
            raise InputError("moldesc: atomic numbers need ASE to name the elements; give element symbols", 1) from exc
    if not 0 < z < len(_SYMBOLS):
        raise InputError(f"moldesc: no element with atomic number {z}", 1)
    return _SYMBOLS[z]


def _floats(value: Any, field: str) -> np.ndarray:
    """`value` as a float array (any shape), or an InputError naming `field`."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{field}: expected numbers, got {value!r:.200}", 1) from None


def _parse_moldesc(moldesc: Any) -> list[tuple[str, np.ndarray]]:
    """DeepChem's moldesc: "El x y z; El x y z" (bohr) or (atomzs, atompos)."""
    atoms = []
    if isinstance(moldesc, str):
        for i, part in enumerate(p for p in moldesc.split(";") if p.strip()):
            fields = part.split()
            if len(fields) != 4:
                raise InputError(f"moldesc: atom {i} ({part.strip()!r}) must be 'Element x y z' (bohr)", 1)
            element = fields[0]
            if element.lstrip("-").isdigit():
                element = _symbol(int(element))
            try:
                position = np.array([float(x) for x in fields[1:]])
            except ValueError:
                raise InputError(f"moldesc: atom {i} ({part.strip()!r}) has a non-numeric coordinate", 1) from None
            atoms.append((element, position))
    elif isinstance(moldesc, (tuple, list)) and len(moldesc) == 2:
        zs, positions = moldesc
        positions = _floats(positions, "moldesc")
        if positions.size % 3:
            raise InputError(f"moldesc: atompos must hold 3 coordinates per atom, got {positions.size} numbers", 1)
        positions = positions.reshape(-1, 3)
        zs = _floats(zs, "moldesc").ravel()
        if not np.all(np.isfinite(zs)) or np.any(zs != np.round(zs)):
            raise InputError(f"moldesc: atomzs must be atomic numbers, got {moldesc[0]!r:.200}", 1)
        zs = [int(z) for z in zs]
        if len(zs) != len(positions):
            raise InputError(f"moldesc: {len(zs)} atomic numbers but {len(positions)} positions", 1)
        atoms = [(_symbol(z), p) for z, p in zip(zs, positions)]
    else:
        raise InputError(f"moldesc: expected 'El x y z; ...' (bohr) or (atomzs, atompos), got {moldesc!r}", 1)
    if not atoms:
        raise InputError("moldesc: no atoms", 1)
    return atoms


class DFTSystem:
    """One crystal of an entry (DeepChem's ``DFTSystem``), built into a :class:`solidxc.System` on demand.

    ``system`` is a dictionary (see the module's docstring) or a structure-file path. Defaults:
    ``pseudo="gth-pbe"``, ``ecut=20`` Ha, ``kpts=(4, 4, 4)``; ``spin`` (N_up - N_down, DeepChem's
    meaning) becomes the initial moments ``magmoms`` (spread evenly) when those are not given.
    """

    def __init__(self, system: Any):
        if isinstance(system, (str, os.PathLike)):
            system = {"structure": os.fspath(system)}
        if not isinstance(system, dict):
            raise InputError(f"system: expected a dictionary or a structure-file path, got {type(system).__name__}", 1)
        self.system = dict(system)
        basis = str(system.get("basis", "pw")).strip().lower()
        if basis not in ("pw", "plane-wave", "planewave", "plane waves"):
            raise InputError(f"basis: SolidXC expands orbitals in plane waves; use 'pw' (got {system.get('basis')!r})", 1)
        self.basis = "pw"
        try:
            self.spin = int(system.get("spin", 0))
            self.charge = int(system.get("charge", 0))
            self.no = int(system.get("number", 1))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"spin, charge, number: expected integers ({exc})", 1) from None
        if "structure" in system:
            try:
                import ase.io
            except ImportError as exc:  # pragma: no cover
                raise InputError("structure: reading structure files needs ASE (pip install ase)", 1) from exc
            try:
                atoms = ase.io.read(system["structure"])
            except Exception as exc:
                raise InputError(f"structure: cannot read {system['structure']!r}: {exc}", 1) from None
            self.lattice = np.asarray(atoms.cell, dtype=float) / BOHR_IN_ANGSTROM
            self.atoms = [(s, p / BOHR_IN_ANGSTROM) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]
            if "magmoms" not in system and np.any(atoms.get_initial_magnetic_moments()):
                self.system["magmoms"] = [float(m) for m in atoms.get_initial_magnetic_moments()]
        else:
            if "alattice" not in system:
                raise InputError("alattice: a periodic system needs its lattice vectors (3x3, bohr, rows); SolidXC "
                                 "computes crystals, not isolated molecules", 1)
            self.lattice = _floats(system["alattice"], "alattice")
            if self.lattice.shape != (3, 3) or not np.all(np.isfinite(self.lattice)):
                raise InputError(f"alattice: expected 3x3 finite numbers (bohr), got {system['alattice']!r}", 1)
            if "moldesc" not in system:
                raise InputError("moldesc: missing (the atoms, 'El x y z; ...' in bohr)", 1)
            self.atoms = _parse_moldesc(system["moldesc"])
        self.settings = {"pseudo": "gth-pbe", "ecut": 20.0, "kpts": (4, 4, 4)}
        self.settings.update({k: system[k] for k in _PERIODIC_KEYS if k in system})
        if self.spin and "magmoms" not in self.settings:
            self.settings["magmoms"] = [self.spin / len(self.atoms)] * len(self.atoms)
        if self.charge:
            self.settings["charge"] = self.charge
        self.nbands = system.get("nbands")

    def get_system(self, scale: float = 1.0, axes: Sequence[int] = (0, 1, 2), fft_size: Any = None) -> System:
        """The :class:`solidxc.System`, with lattice vectors ``axes`` times ``scale`` (fractional
        positions fixed)."""
        factors = np.ones(3)
        factors[list(axes)] = scale
        lattice = self.lattice * factors[:, None]
        fractional = [np.linalg.solve(self.lattice.T, p) for _, p in self.atoms]
        atoms = [(el, lattice.T @ f) for (el, _), f in zip(self.atoms, fractional)]
        settings = dict(self.settings)
        if fft_size is not None:
            settings["fft_size"] = tuple(int(n) for n in fft_size)
        return System(lattice, atoms, **settings)

    get_dqc_mol = get_system  # DeepChem's name

    def __repr__(self) -> str:
        formula = "".join(el for el, _ in self.atoms)
        kpts = self.settings["kpts"]  # as given: checked by the core when the System is built
        kpts = tuple(kpts) if isinstance(kpts, (list, tuple)) else kpts
        return f"DFTSystem({formula}, ecut={self.settings['ecut']!r}, kpts={kpts!r})"


class KSCalc:
    """The result of one SCF as DeepChem's ``KSCalc``: ``energy()``, ``dens()``, ``eigenvalues()``
    (torch tensors, differentiable with respect to the functional's parameters) and ``result``."""

    def __init__(self, output: "_sxc_torch.SCFOutput"):
        self.output = output
        self.result = output.result

    def energy(self) -> torch.Tensor:
        return self.output.energy

    def dens(self, rgrid: Any = None) -> torch.Tensor:
        """Total density on the FFT grid (n1, n2, n3), electrons/bohr^3."""
        if rgrid is not None:
            raise InputError("rgrid: the density is given on the plane-wave FFT grid; other grids are not supported", 1)
        return self.output.density.sum(dim=0)

    def eigenvalues(self) -> torch.Tensor:
        return self.output.eigenvalues


class XCNNSCF:
    """Runs the SCF of an entry's systems with a torch functional (DeepChem's ``XCNNSCF``)."""

    def __init__(self, xc: Any, entry: "DFTEntry", **scf_options: Any):
        self.xc = xc
        self.entry = entry
        self.scf_options = {"tol": 1e-9, "maxiter": 200, **scf_options}
        self._previous = None

    def run(self, system: DFTSystem, start: Any = None) -> KSCalc:
        options = dict(self.scf_options)
        if system.nbands is not None:
            options.setdefault("nbands", int(system.nbands))
        built = system if isinstance(system, System) else system.get_system()
        output = _sxc_torch.scf(built, self.xc, start=start, **options)
        return KSCalc(output)


# --------------------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------------------

class DFTEntry:
    """One datum: its type, true value, systems and weight (DeepChem's ``DFTEntry``). Create
    entries with :meth:`create`. Extra keys (``name``, ``split``, and the type's options) are kept."""

    e_types: dict = {}

    @classmethod
    def create(cls, e_type: str, true_val: Any, systems: Sequence[Any], weight: Any = 1, **options: Any) -> "DFTEntry":
        if true_val is None:
            true_val = "0.0"
        key = str(e_type).strip().lower()
        if key not in cls.e_types:
            raise InputError(f"e_type: unknown entry type {e_type!r}; expected one of {sorted(cls.e_types)}", 1)
        entry = cls.e_types[key](key, true_val, systems, weight, **options)
        entry.get_true_val()  # a non-numeric value or a missing file fails here, naming true_val
        return entry

    def __init__(self, e_type: str, true_val: Any, systems: Sequence[Any], weight: Any = 1, **options: Any):
        if isinstance(systems, (dict, str, os.PathLike)) or not isinstance(systems, Sequence) or not systems:
            raise InputError("systems: expected a non-empty list of systems", 1)
        self._systems = [DFTSystem(s) for s in systems]
        try:
            self._weight = float(weight)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"weight: expected a number, got {weight!r}", 1) from None
        if not (math.isfinite(self._weight) and self._weight >= 0):
            raise InputError(f"weight: expected a non-negative number, got {weight!r}", 1)
        self.true_val = true_val
        self.name = str(options.pop("name", "") or self._systems[0])
        self.split = str(options.pop("split", "train"))
        self.options = options
        for i, system in enumerate(self._systems):
            magmoms = system.system.get("magmoms")
            if "spin" in system.system and magmoms is not None:
                total = float(np.sum(_floats(magmoms, f"systems[{i}].magmoms")))
                if abs(total - system.spin) > 1e-9:
                    raise InputError(f"systems[{i}]: spin {system.spin} disagrees with magmoms (sum {total:g})", 1)

    @property
    def entry_type(self) -> str:
        raise NotImplementedError

    def get_systems(self) -> list[DFTSystem]:
        return self._systems

    def get_weight(self) -> float:
        return self._weight

    def get_true_val(self) -> np.ndarray:
        return np.array([_float(self.true_val, "true_val")])

    def label(self) -> np.ndarray:
        """The dataset label y: the true value, or 0 for entries whose prediction is a residual norm."""
        return self.get_true_val()

    def get_val(self, qcs: Sequence[KSCalc]) -> torch.Tensor:
        raise NotImplementedError

    def prediction(self, qcs: Sequence[KSCalc]) -> torch.Tensor:
        """One number per entry for XCModel's loss: get_val for scalar entries."""
        return self.get_val(qcs).reshape(1)

    def run(self, xc: Any, **scf_options: Any) -> list[KSCalc]:
        """The SCF of every system, in order (each started from the previous one's result)."""
        evaluator = XCNNSCF(xc, self, **scf_options)
        qcs: list[KSCalc] = []
        for system in self.get_systems():
            try:
                qcs.append(evaluator.run(system, start=None))
            except SolidXCError as exc:
                raise EntryError(f"entry {self.name!r} ({self.entry_type}): {type(exc).__name__}: {exc}", 1) from exc
        return qcs

    def __repr__(self) -> str:
        return f"DFTEntry({self.entry_type}, {self.name!r}, true_val={self.true_val!r}, weight={self._weight:g})"


def _object_array(values: Any) -> np.ndarray:
    """A 1-d object array of the items (nested lists stay items, for _float to refuse by name)."""
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _is_index(value: Any) -> bool:
    """A non-negative integer (not a bool, not a float)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0


def _float(value: Any, field: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{field}: expected a number (or a numeric string), got {value!r}", 1) from None
    if not math.isfinite(out):
        raise InputError(f"{field}: expected a finite number, got {value!r}", 1)
    return out


def _entry_type(name: str):
    def register(cls):
        DFTEntry.e_types[name] = cls
        cls.entry_type = property(lambda self: name)
        return cls
    return register


@_entry_type("ie")
class _EntryIE(DFTEntry):
    """Ionisation (or atomisation) energy, DeepChem's formula: sum_i n_i E_i - 2 n_0 E_0, Ha."""

    def get_val(self, qcs):
        energies = [s.no * qc.energy() for s, qc in zip(self.get_systems(), qcs)]
        return (sum(energies) - 2 * energies[0]).reshape(1)


@_entry_type("ae")
class _EntryAE(_EntryIE):
    """Atomisation energy: between neutral species, so every system's charge is 0."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        charged = [i for i, s in enumerate(self.get_systems()) if s.charge != 0]
        if charged:
            raise InputError(f"systems[{charged[0]}]: charge {self.get_systems()[charged[0]].charge} in an 'ae' entry; "
                             f"atomisation energies are between neutral systems (use 'ie' for ions)", 1)


@_entry_type("energy")
class _EntryEnergy(DFTEntry):
    """The (free) energy per cell of the one system, Ha."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _one_system(self)

    def get_val(self, qcs):
        return qcs[0].energy().reshape(1)


def _one_system(entry: DFTEntry) -> None:
    if len(entry.get_systems()) != 1:
        raise InputError(f"systems: a {entry.entry_type!r} entry has exactly one system, got {len(entry.get_systems())}", 1)


@_entry_type("dens")
class _EntryDens(DFTEntry):
    """Density profile: ``true_val`` is a .npy file with the total density (n1, n2, n3) on the
    system's FFT grid (electrons/bohr^3). ``get_val`` is the density; XCModel's loss uses
    sum((rho - rho_true)^2) dv, so the entry's prediction is its square root and its label 0."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _one_system(self)

    def get_true_val(self):
        path = str(self.true_val)
        if not os.path.exists(path):
            raise InputError(f"true_val: density file {path!r} not found", 1)
        return np.load(path)

    def label(self):
        return np.array([0.0])

    def get_val(self, qcs):
        return qcs[0].dens()

    def prediction(self, qcs):
        rho = self.get_val(qcs)
        ref = torch.from_numpy(np.asarray(self.get_true_val(), dtype=float))
        if ref.shape != rho.shape:
            raise EntryError(f"entry {self.name!r}: true density has shape {tuple(ref.shape)}, the system's FFT grid "
                             f"is {tuple(rho.shape)}", 1)
        return torch.sqrt(((rho - ref) ** 2).sum() * qcs[0].result.dv + 1e-300).reshape(1)


def _degenerate_mean(eig: torch.Tensor, s: int, k: int, band: int, tol: float = 1e-6) -> torch.Tensor:
    """The band energy averaged over its degenerate level at (spin, k), so that a loss on it is defined."""
    values = eig[s, k].detach().numpy()
    members = np.flatnonzero(np.abs(values - values[band]) < tol)
    return eig[s, k, members].mean()


@_entry_type("gap")
class _EntryGap(DFTEntry):
    """Band gap (Ha): the lowest empty level minus the highest occupied one over the irreducible
    k-points (degenerate levels averaged). Insulators and semiconductors only."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _one_system(self)

    def get_val(self, qcs):
        result = qcs[0].result
        eig = qcs[0].eigenvalues()
        occ = np.asarray(result.occupations)
        capacity = 2.0 if eig.shape[0] == 1 else 1.0
        filled = occ > 0.5 * capacity
        partial = np.abs(occ - np.where(filled, capacity, 0.0)) > 1e-3 * capacity
        if partial.any():
            raise EntryError(f"entry {self.name!r}: no gap: {int(partial.sum())} states are partly occupied (a metal, "
                             f"or a smearing wider than the gap)", 1)
        if not filled.any() or filled.all():
            raise EntryError(f"entry {self.name!r}: gap needs occupied and empty bands (raise nbands)", 1)
        values = eig.detach().numpy()
        vb = np.where(filled, values, -np.inf)
        cb = np.where(~filled, values, np.inf)
        top = np.unravel_index(np.argmax(vb), vb.shape)
        bottom = np.unravel_index(np.argmin(cb), cb.shape)
        gap = _degenerate_mean(eig, bottom[0], bottom[1], bottom[2]) - _degenerate_mean(eig, top[0], top[1], top[2])
        if float(gap.detach()) <= 0:
            raise EntryError(f"entry {self.name!r}: no gap (a metal, or too few k-points): {float(gap):.3e} Ha", 1)
        return gap.reshape(1)


@_entry_type("eig")
class _EntryEig(DFTEntry):
    """Selected band energies (Ha): ``bands`` is a list of [spin, k, band] (k an index of the
    irreducible k-points); ``true_val`` one energy per band. Degenerate levels are averaged.
    The prediction for XCModel is the norm of the differences (label 0)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _one_system(self)
        bands = self.options.get("bands")
        if not bands:
            raise InputError("bands: an 'eig' entry needs a list of [spin, k, band] indices", 1)
        if not isinstance(bands, (list, tuple)) or not all(
                isinstance(b, (list, tuple)) and len(b) == 3 and all(_is_index(i) for i in b) for b in bands):
            raise InputError(f"bands: expected [spin, k, band] triples of non-negative integers, got {bands!r}", 1)
        self.bands = [tuple(int(i) for i in b) for b in bands]

    def get_true_val(self):
        values = self.true_val
        if isinstance(values, str):
            values = [v for v in values.replace(",", " ").split()]
        values = np.atleast_1d(np.asarray([_float(v, "true_val") for v in np.atleast_1d(_object_array(values))]))
        if values.size != len(self.bands):
            raise InputError(f"true_val: {values.size} values for {len(self.bands)} bands", 1)
        return values

    def label(self):
        return np.array([0.0])

    def get_val(self, qcs):
        eig = qcs[0].eigenvalues()
        for s, k, b in self.bands:
            if not (0 <= s < eig.shape[0] and 0 <= k < eig.shape[1] and 0 <= b < eig.shape[2]):
                raise EntryError(f"entry {self.name!r}: band [{s}, {k}, {b}] outside eigenvalues of shape "
                                 f"{tuple(eig.shape)}", 1)
        return torch.stack([_degenerate_mean(eig, s, k, b) for s, k, b in self.bands])

    def prediction(self, qcs):
        diff = self.get_val(qcs) - torch.from_numpy(self.get_true_val())
        return torch.sqrt((diff ** 2).sum() + 1e-300).reshape(1)


def equilibrium_scale(scales: Sequence[float], energies: torch.Tensor) -> torch.Tensor:
    """The scale factor of the energy minimum, differentiable in the energies.

    Fits E = c0 + c1 x + c2 x^2 + c3 x^3 with x = s^-2 (the third-order Birch-Murnaghan form:
    x is V^(-2/3) up to a constant) by least squares, linear in E, and takes the root of dE/dx
    with positive curvature nearest x = 1. Raises EntryError when the minimum lies outside the scan.
    """
    s = np.asarray(scales, dtype=float)
    if s.ndim != 1 or s.size < 4 or np.unique(s).size != s.size or np.any(s <= 0):
        raise InputError(f"scales: expected at least 4 distinct positive scale factors, got {scales!r}", 1)
    x = s ** -2.0
    design = np.vander(x - 1.0, 4, increasing=True)  # centred at x = 1 for conditioning
    projector = torch.from_numpy(np.linalg.pinv(design))
    e = energies.reshape(-1).to(torch.float64)
    c = projector @ (e - e.detach().mean())
    # dE/du = c1 + 2 c2 u + 3 c3 u^2 with u = x - 1.
    a, b, c0 = 3 * c[3], 2 * c[2], c[1]
    roots = []
    an, bn, cn = float(a.detach()), float(b.detach()), float(c0.detach())
    if abs(an) < 1e-14 * max(abs(bn), 1e-300):
        if bn > 0:
            roots.append(-c0 / b)
    else:
        disc = bn * bn - 4 * an * cn
        if disc >= 0:
            sq = torch.sqrt(b * b - 4 * a * c0)
            for sign in (1.0, -1.0):
                # Numerically stable pair: q = -(b + sign(b) sqrt(disc)) / 2; roots q/a and c/q.
                q = -0.5 * (b + math.copysign(1.0, bn) * sq)
                root = q / a if sign > 0 else c0 / q
                if float((2 * a * root + b).detach()) > 0:  # positive curvature: d2E/du2 = b + 2 a u
                    roots.append(root)
    lo, hi = float(x.min() - 1), float(x.max() - 1)
    inside = [r for r in roots if lo <= float(r.detach()) <= hi]
    if not inside:
        found = ", ".join(f"{float(r.detach() + 1) ** -0.5:.4f}" for r in roots) or "none"
        raise EntryError(f"lattice: no energy minimum inside the scanned scales {s.min():.4f}..{s.max():.4f} "
                         f"(minima at scales: {found}); re-centre a_ref or widen scales", 1)
    u = min(inside, key=lambda r: abs(float(r.detach())))
    return (u + 1.0) ** -0.5


@_entry_type("lattice")
class _EntryLattice(DFTEntry):
    """Equilibrium lattice constant (bohr): ``true_val`` the reference a0; ``a_ref`` the length
    (bohr) that scale 1 of the given cell stands for (default: the first lattice vector's
    length); ``scales`` the scan (default 0.97 ... 1.03, 5 points); ``scale_axes`` the lattice
    vectors scaled (default all three; graphene [0, 1]). da0/dtheta comes from the scan points'
    energy gradients (no response solve)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _one_system(self)
        reference = self._systems[0]
        self.a_ref = _float(self.options.get("a_ref", np.linalg.norm(reference.lattice[0])), "a_ref")
        scales = self.options.get("scales", DEFAULT_SCALES)
        if not isinstance(scales, (list, tuple)):
            raise InputError(f"scales: expected a list of scale factors, got {scales!r}", 1)
        self.scales = tuple(_float(s, "scales") for s in scales)
        axes = self.options.get("scale_axes", (0, 1, 2))
        if not isinstance(axes, (list, tuple)) or not all(_is_index(a) for a in axes):
            raise InputError(f"scale_axes: expected lattice-vector indices 0, 1, 2, got {axes!r}", 1)
        self.scale_axes = tuple(int(a) for a in axes)
        if len(self.scales) < 4 or len(set(self.scales)) != len(self.scales) or min(self.scales) <= 0:
            raise InputError(f"scales: expected at least 4 distinct positive scale factors, got {self.scales!r}", 1)
        if not self.scale_axes or any(a not in (0, 1, 2) for a in self.scale_axes):
            raise InputError(f"scale_axes: expected lattice-vector indices 0, 1, 2, got {self.scale_axes!r}", 1)
        self._fft_size = None

    def fft_size(self) -> tuple:
        """One FFT grid for the whole scan: the default grid of the largest cell."""
        if self._fft_size is None:
            largest = self._systems[0].get_system(max(self.scales), self.scale_axes)
            self._fft_size = tuple(largest.fft_size)
        return self._fft_size

    def scan_systems(self) -> list[System]:
        grid = self.fft_size()
        return [self._systems[0].get_system(s, self.scale_axes, grid) for s in self.scales]

    def run(self, xc: Any, **scf_options: Any) -> list[KSCalc]:
        evaluator = XCNNSCF(xc, self, **scf_options)
        nbands = self._systems[0].nbands
        qcs, start = [], None
        for scale, system in zip(self.scales, self.scan_systems()):
            try:
                options = {} if nbands is None else {"nbands": int(nbands)}
                qc = KSCalc(_sxc_torch.scf(system, xc, start=start, **{**evaluator.scf_options, **options}))
            except SolidXCError as exc:
                raise EntryError(f"entry {self.name!r} (lattice) at scale {scale:.4f}: {type(exc).__name__}: {exc}", 1) from exc
            qcs.append(qc)
            start = qc.result
        return qcs

    def get_val(self, qcs):
        energies = torch.stack([qc.energy() for qc in qcs])
        return (equilibrium_scale(self.scales, energies) * self.a_ref).reshape(1)


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------

class EntryDataset:
    """A minimal in-memory dataset of entries (used when DeepChem is not installed): ``X`` the
    entries, ``y`` their labels, ``w`` weights, ``ids``; ``iterbatches`` as DeepChem's."""

    def __init__(self, entries: Sequence[DFTEntry]):
        self.X = np.empty(len(entries), dtype=object)
        for i, entry in enumerate(entries):
            self.X[i] = entry
        self.y = np.array([e.label() for e in entries], dtype=float).reshape(len(entries), -1)
        self.w = np.array([[e.get_weight()] for e in entries], dtype=float)
        self.ids = np.arange(len(entries))

    def __len__(self) -> int:
        return len(self.X)

    def iterbatches(self, batch_size: int | None = None, epochs: int = 1, deterministic: bool = False,
                    pad_batches: bool = False) -> Iterable:
        n = len(self)
        size = n if not batch_size else int(batch_size)
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            order = np.arange(n) if deterministic else rng.permutation(n)
            for start in range(0, n, size):
                idx = order[start:start + size]
                yield self.X[idx], self.y[idx], self.w[idx], self.ids[idx]


def make_dataset(entries: Sequence[DFTEntry]) -> Any:
    """A dataset of entries: DeepChem's NumpyDataset when DeepChem is installed, else an EntryDataset."""
    if HAVE_DEEPCHEM:
        from deepchem.data import NumpyDataset
        X = np.empty(len(entries), dtype=object)
        for i, entry in enumerate(entries):
            X[i] = entry
        y = np.array([e.label() for e in entries], dtype=float).reshape(len(entries), -1)
        w = np.array([[e.get_weight()] for e in entries], dtype=float)
        return NumpyDataset(X, y, w, ids=np.arange(len(entries)))
    return EntryDataset(entries)


class DFTYamlLoader:
    """Reads DeepChem's DFT YAML format (a list of entries with ``e_type``, ``true_val``,
    ``systems`` and optional ``weight``, plus SolidXC's keys) into a dataset: a DeepChem
    ``DiskDataset`` when DeepChem is installed, else an :class:`EntryDataset`."""

    def create_dataset(self, inputs: Any, data_dir: str | None = None, shard_size: int | None = 1) -> Any:
        entries = self.load_entries(inputs)
        if HAVE_DEEPCHEM:
            def shards():
                for i, entry in enumerate(entries):
                    yield (np.array([entry], dtype=object), entry.label().reshape(1, -1),
                           np.array([[entry.get_weight()]]), np.array([i]))
            return _DiskDataset.create_dataset(shards(), data_dir)
        return EntryDataset(entries)

    @staticmethod
    def load_entries(inputs: Any) -> list[DFTEntry]:
        import yaml
        paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        entries = []
        for path in paths:
            path = os.fspath(path)
            try:
                with open(path, "rb") as f:  # bytes: PyYAML reports bad UTF-8 as a YAMLError
                    data = yaml.safe_load(f)
            except OSError as exc:
                raise InputError(f"inputs: cannot read {path!r}: {exc.strerror}", 1) from None
            except yaml.YAMLError as exc:
                raise InputError(f"inputs: {path!r} is not valid YAML: {exc}", 1) from None
            except RecursionError:  # PyYAML's composer recurses once per nesting level
                raise InputError(f"inputs: {path!r} is nested too deeply to read", 1) from None
            if not data:
                raise InputError(f"inputs: {path!r} holds no entries (an empty dataset)", 1)
            if not isinstance(data, list):
                raise InputError(f"inputs: {path!r} must hold a list of entries", 1)
            base = os.path.dirname(os.path.abspath(path))
            for i, shard in enumerate(data):
                if not isinstance(shard, dict):
                    raise InputError(f"{path}: entry {i} must be a mapping", 1)
                keys = [k for k in shard if not isinstance(k, str)]
                if keys:  # YAML allows `1: x` or `null: x`; they would be keyword arguments below
                    raise InputError(f"{path}: entry {i} has a key that is not a string: {keys[0]!r}", 1)
                missing = [k for k in ("e_type", "systems") if k not in shard]
                if missing:
                    raise InputError(f"{path}: entry {i} lacks {', '.join(missing)}", 1)
                options = {k: v for k, v in shard.items() if k not in ("e_type", "true_val", "systems", "weight")}
                systems = [_resolve_paths(s, base) for s in shard["systems"]] if isinstance(shard["systems"], list) else shard["systems"]
                true_val = shard.get("true_val", "0.0")
                if shard["e_type"] == "dens" and isinstance(true_val, str) and not os.path.isabs(true_val):
                    true_val = os.path.join(base, true_val)
                try:
                    entries.append(DFTEntry.create(shard["e_type"], true_val, systems, shard.get("weight", 1), **options))
                except (InputError, SolidXCError) as exc:
                    raise InputError(f"{path}: entry {i} ({shard.get('name', shard['e_type'])}): {exc}", 1) from None
        return entries


def _resolve_paths(system: Any, base: str) -> Any:
    """Structure-file paths relative to the YAML file."""
    if isinstance(system, str) and not os.path.isabs(system):
        return os.path.join(base, system)
    if isinstance(system, dict) and isinstance(system.get("structure"), str) and not os.path.isabs(system["structure"]):
        return {**system, "structure": os.path.join(base, system["structure"])}
    return system


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------

def _construct_nn_model(input_size: int, hidden_size: int, n_layers: int, modeltype: int) -> torch.nn.Module:
    """DeepChem's default network: [Linear, Softplus] x n_layers, Linear(hidden, 1, bias=False);
    modeltype 2 ends with exp(x) - 1."""
    layers: list[torch.nn.Module] = []
    width = input_size
    for _ in range(n_layers):
        layers += [torch.nn.Linear(width, hidden_size), torch.nn.Softplus()]
        width = hidden_size
    layers.append(torch.nn.Linear(width, 1, bias=False))
    if modeltype == 2:
        class ExpM1(torch.nn.Module):
            def forward(self, x):
                return torch.exp(x) - 1
        layers.append(ExpM1())
    return torch.nn.Sequential(*layers).to(torch.float64)


class DFTXC(torch.nn.Module):
    """The functional as a layer over entries: ``forward(entries)`` runs every entry's SCFs and
    returns one prediction per entry, shape (batch, 1) (DeepChem's ``DFTXC``, with the HybridXC
    created once). A failing entry is skipped with a warning (training: its prediction is its
    label, so it adds nothing to the loss; prediction: NaN) and counted in ``failures``, or
    raises with ``on_failure="raise"``."""

    def __init__(self, xcstr: str, nnmodel: torch.nn.Module, aweight0: float = 0.0, bweight0: float = 1.0,
                 on_failure: str = "skip", scf_options: dict | None = None):
        super().__init__()
        if on_failure not in ("skip", "raise"):
            raise InputError(f"on_failure: expected 'skip' or 'raise', got {on_failure!r}", 1)
        self.xcstr = xcstr
        self.nnmodel = nnmodel
        self.hybridxc = HybridXC(xcstr, nnmodel, aweight0=aweight0, bweight0=bweight0)
        self.on_failure = on_failure
        self.scf_options = dict(scf_options or {})
        self.failures = 0
        self.failure_log: list[str] = []

    def _failed(self, entry: DFTEntry, exc: Exception) -> None:
        self.failures += 1
        self.failure_log.append(f"{entry.name}: {exc}")
        warnings.warn(f"solidxc: skipping entry {entry.name!r}: {exc}", RuntimeWarning, stacklevel=3)

    def evaluate_entry(self, entry: DFTEntry) -> torch.Tensor:
        options = dict(self.scf_options)
        if self.on_failure == "skip":
            # A response solve that fails in the backward pass drops this entry's gradient, counted.
            options["on_backward_failure"] = lambda exc: self._failed(entry, exc)
        qcs = entry.run(self.hybridxc, **options)
        return entry.prediction(qcs)

    def forward(self, inputs: Any) -> torch.Tensor:
        entries = [inputs] if isinstance(inputs, DFTEntry) else list(np.ravel(inputs))
        if not entries:
            return torch.zeros((0, 1), dtype=torch.float64)
        out = []
        for entry in entries:
            try:
                value = self.evaluate_entry(entry)
            except (EntryError, SolidXCError) as exc:
                if self.on_failure == "raise":
                    raise
                self._failed(entry, exc)
                value = (torch.from_numpy(np.asarray(entry.label(), dtype=float)).reshape(1) if self.training
                         else torch.full((1,), float("nan"), dtype=torch.float64))
            out.append(value.reshape(1).to(torch.float64))
        return torch.stack(out)


def entry_loss(outputs: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Weighted mean squared error over every entry of the batch: mean_i w_i (p_i - y_i)^2."""
    p = outputs[0].reshape(-1)
    y = torch.as_tensor(labels[0], dtype=torch.float64).reshape(-1)
    w = torch.as_tensor(weights[0], dtype=torch.float64).reshape(-1)
    return (w * (p - y) ** 2).mean()


def _default_nnmodel(xcstr: str, input_size: int | None, hidden_size: int, n_layers: int, modeltype: int):
    family = Builtin(xcstr).family if isinstance(xcstr, str) else xcstr.family
    size = input_size if input_size is not None else (2 if family == LDA else 3)
    return _construct_nn_model(size, hidden_size, n_layers, modeltype)


construct_nn_model = _construct_nn_model
default_nnmodel = _default_nnmodel


class _StandaloneModel:
    """``fit``/``predict``/``evaluate``/``save_checkpoint``/``restore`` for XCModel without DeepChem."""

    def __init__(self, model: torch.nn.Module, loss: Any, batch_size: int = 1, learning_rate: float = 0.001,
                 model_dir: str | None = None, **kwargs: Any):
        self.model = model
        self._loss_fn = loss
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.model_dir = model_dir or os.path.join(os.getcwd(), "solidxc_model")
        self._optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        self._global_step = 0

    def fit(self, dataset: Any, nb_epoch: int = 10, checkpoint_interval: int = 1000, deterministic: bool = False,
            restore: bool = False, all_losses: list | None = None, **kwargs: Any) -> float:
        if restore:
            self.restore()
        self.model.train()
        last = 0.0
        for X, y, w, _ in dataset.iterbatches(self.batch_size, nb_epoch, deterministic=deterministic):
            self._optimizer.zero_grad()
            inputs, labels, weights = self._prepare_batch((X, y, w))
            loss = self._loss_fn([self.model(inputs)], labels, weights)
            loss.backward()
            self._optimizer.step()
            self._global_step += 1
            last = float(loss)
            if all_losses is not None:
                all_losses.append(last)
            if checkpoint_interval > 0 and self._global_step % checkpoint_interval == 0:
                self.save_checkpoint()
        if checkpoint_interval > 0:
            self.save_checkpoint()
        return last

    def _prepare_batch(self, batch):
        X, y, w = batch
        return X, [torch.as_tensor(y, dtype=torch.float64)], [torch.as_tensor(w, dtype=torch.float64)]

    def predict(self, dataset: Any) -> np.ndarray:
        self.model.eval()
        out = []
        with torch.no_grad():
            for X, _, _, _ in dataset.iterbatches(self.batch_size, 1, deterministic=True):
                out.append(self.model(X).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1))

    def evaluate(self, dataset: Any, metrics: Sequence[Any], **kwargs: Any) -> dict:
        pred = self.predict(dataset)
        y = np.asarray(dataset.y, dtype=float).reshape(pred.shape)
        scores = {}
        for metric in metrics:
            fn = getattr(metric, "compute_metric", None)
            name = getattr(metric, "name", getattr(metric, "__name__", str(metric)))
            scores[name] = float(fn(y, pred)) if fn is not None else float(metric(y, pred))
        return scores

    def save_checkpoint(self, max_checkpoints_to_keep: int = 5, model_dir: str | None = None) -> None:
        directory = model_dir or self.model_dir
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "checkpoint1.pt")
        tmp = path + ".tmp"
        torch.save({"model_state_dict": self.model.state_dict(), "optimizer_state_dict": self._optimizer.state_dict(),
                    "global_step": self._global_step}, tmp)
        os.replace(tmp, path)

    def restore(self, checkpoint: str | None = None, model_dir: str | None = None) -> None:
        path = checkpoint or os.path.join(model_dir or self.model_dir, "checkpoint1.pt")
        if not os.path.exists(path):
            raise InputError(f"checkpoint: no checkpoint at {path!r}", 1)
        data = torch.load(path, weights_only=False)
        self.model.load_state_dict(data["model_state_dict"])
        self._optimizer.load_state_dict(data["optimizer_state_dict"])
        self._global_step = data["global_step"]


_Base = _TorchModel if HAVE_DEEPCHEM else _StandaloneModel


class XCModel(_Base):
    """DeepChem's ``XCModel`` for crystals: trains ``HybridXC(xcstr, nnmodel)`` on entries.

    Parameters
    ----------
    xcstr : str
        Base functional ("pbe", "gga_x_pbe + gga_c_pbe", "lda_x", ...).
    nnmodel : torch.nn.Module, optional
        Default: DeepChem's network with ``input_size`` inputs (2 for an LDA base, 3 for GGA),
        ``hidden_size`` units, ``n_layers`` layers, ``modeltype`` (1, or 2 for exp(x) - 1), float64.
    aweight0, bweight0 : float
        Initial weights of the network and of the base (e = a NN + b base).
    on_failure : {"skip", "raise"}
        What a failing entry does during training (see :class:`DFTXC`).
    scf_options : dict
        Passed to every SCF (``tol``, ``maxiter``, ``threads``, ``backward_tol``, ...).
    **kwargs
        DeepChem TorchModel's (``batch_size``, ``learning_rate``, ``model_dir``, ``log_frequency``, ...).
    """

    def __init__(self, xcstr: str = "pbe", nnmodel: torch.nn.Module | None = None, input_size: int | None = None,
                 hidden_size: int = 10, n_layers: int = 1, modeltype: int = 1, n_tasks: int = 0,
                 log_frequency: int = 0, mode: str = "regression", device: Any = None, aweight0: float = 0.0,
                 bweight0: float = 1.0, on_failure: str = "skip", scf_options: dict | None = None, **kwargs: Any):
        if nnmodel is None:
            nnmodel = _default_nnmodel(xcstr, input_size, hidden_size, n_layers, modeltype)
        model = DFTXC(xcstr, nnmodel, aweight0=aweight0, bweight0=bweight0, on_failure=on_failure,
                      scf_options=scf_options)
        self.xc = xcstr
        self.mode = mode
        if HAVE_DEEPCHEM:
            if log_frequency:
                kwargs["log_frequency"] = log_frequency
            super().__init__(model, loss=entry_loss, output_types=["prediction"], **kwargs)
        else:
            super().__init__(model, loss=entry_loss, **kwargs)

    def _prepare_batch(self, batch):
        inputs, labels, weights = batch
        if HAVE_DEEPCHEM:
            inputs = inputs[0] if isinstance(inputs, list) and len(inputs) == 1 else inputs
            labels = labels[0] if isinstance(labels, list) and len(labels) == 1 else labels
            weights = weights[0] if isinstance(weights, list) and len(weights) == 1 else weights
        def tensors(values):
            if values is None or (isinstance(values, list) and (not values or values[0] is None)):
                return []
            return [torch.as_tensor(np.asarray(values, dtype=float), dtype=torch.float64)]
        label_tensors, weight_tensors = tensors(labels), tensors(weights)
        return [inputs], label_tensors, weight_tensors

    @property
    def failures(self) -> int:
        return self.model.failures

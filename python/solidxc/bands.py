"""Band structures and densities of states of a converged SCF.

``band_structure(result, path)`` diagonalises the converged Kohn-Sham Hamiltonian (local
potential of the SCF; kinetic and nonlocal operators at each k) non-self-consistently at the
k-points of a path, in the core (``sxc_result_bands``). ``dos(result)`` broadens eigenvalues on
the SCF's k-points, or on a denser grid solved the same way, into a density of states. Both
return objects with ``.plot()`` (matplotlib figures) and keep atomic units (Ha) inside; eV
appears only in plots and printed reports.

Example::

    result = solidxc.scf(system, xc="lda,pw")
    bs = result.band_structure("GXWKGLUWLK", npoints=120)
    print(bs.gap())
    bs.plot(emin=-13, emax=8).savefig("si_bands.png")
    result.dos(width=0.005).plot().savefig("si_dos.png")
"""

from __future__ import annotations

import ctypes
from typing import Any, NamedTuple, Sequence

import numpy as np

from . import _lib
from .errors import InputError
from .units import BOHR_IN_ANGSTROM, HARTREE_IN_EV

#: k-points per call into the core (a progress bar advances per chunk).
_CHUNK = 64

_UNITS = {"ev": HARTREE_IN_EV, "ha": 1.0}


def _unit_factor(units: str) -> tuple[float, str]:
    key = str(units).lower()
    if key not in _UNITS:
        raise InputError(f"units: expected 'eV' or 'Ha', got {units!r}")
    return _UNITS[key], ("eV" if key == "ev" else "Ha")


def _axes(ax: Any, figsize: tuple[float, float]):
    """(figure, axes): the given axes and its figure, or a new figure."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def eigenvalues_at(result: Any, kpts: Any, nbands: int | None = None, progress: bool = False) -> np.ndarray:
    """Non-self-consistent Kohn-Sham eigenvalues (Ha) at k-points ``kpts`` ((nk, 3), reduced
    coordinates of the reciprocal vectors), shape (nspin, nk, nbands). ``nbands`` defaults to the
    SCF's band count. Every band is converged to a residual of 1e-8 Ha
    (:class:`~solidxc.ConvergenceError` otherwise)."""
    kpts = np.ascontiguousarray(np.asarray(kpts, dtype=np.float64))
    if kpts.ndim == 1 and kpts.size == 3:
        kpts = kpts.reshape(1, 3)
    if kpts.ndim != 2 or kpts.shape[1] != 3:
        raise InputError(f"kpts: expected an (nk, 3) array of reduced coordinates, got shape {kpts.shape}")
    nbands = result.nbands if nbands is None else nbands
    if isinstance(nbands, bool) or not isinstance(nbands, (int, np.integer)):
        raise InputError(f"nbands: expected an integer, got {nbands!r}")
    nbands = int(nbands)
    if not 1 <= nbands <= 100_000:  # checked here too: ctypes would wrap an int beyond 32 bits
        raise InputError(f"nbands: must be between 1 and 100000, got {nbands}")
    lib = _lib.load()
    ptr = ctypes.POINTER(ctypes.c_double)
    nk = kpts.shape[0]
    out = np.empty((result.nspin, nk, nbands))
    chunks = range(0, max(nk, 1), _CHUNK)
    if progress and nk > _CHUNK:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="bands", unit="chunk")
    for first in chunks:
        part = np.ascontiguousarray(kpts[first:first + _CHUNK])
        values = np.empty((result.nspin, part.shape[0], nbands))
        _lib.check(lib.sxc_result_bands(result.handle, part.ctypes.data_as(ptr), part.shape[0], nbands,
                                        values.ctypes.data_as(ptr), values.size))
        out[:, first:first + part.shape[0]] = values
    return out


# ------------------------------------------------------------------------------------------ band structure
class Gap(NamedTuple):
    """A band gap report (energies in Ha, k-points reduced). ``value`` is 0 for a metal."""

    value: float
    direct: bool
    vbm: float
    cbm: float
    k_vbm: np.ndarray | None
    k_cbm: np.ndarray | None
    direct_gap: float
    k_direct: np.ndarray | None
    metal: bool

    def __str__(self) -> str:
        if self.metal:
            return "metal: bands cross the Fermi level (gap 0)"
        kind = "direct" if self.direct else "indirect"
        return (f"{kind} gap {self.value:.6f} Ha ({self.value * HARTREE_IN_EV:.4f} eV): VBM {self.vbm:.6f} Ha at "
                f"k = {np.round(self.k_vbm, 4).tolist()}, CBM {self.cbm:.6f} Ha at k = {np.round(self.k_cbm, 4).tolist()}; "
                f"smallest direct gap {self.direct_gap:.6f} Ha ({self.direct_gap * HARTREE_IN_EV:.4f} eV) at "
                f"k = {np.round(self.k_direct, 4).tolist()}")


def _occupied_bands(result: Any, energies: np.ndarray) -> list[int] | None:
    """Occupied bands per spin, or None when a band crosses the Fermi level (a metal).
    Integer occupations: the SCF's count. Smeared occupations: the bands wholly below E_F."""
    nspin = energies.shape[0]
    if getattr(result.system, "smearing", None) is None:
        full = 2.0 / nspin
        counts = (result.occupations > 0.5 * full).sum(axis=2)  # (nspin, nk_scf)
        return [int(counts[s].max()) for s in range(nspin)]
    ef = result.fermi_level
    below = []
    for s in range(nspin):
        lo, hi = energies[s].min(axis=0), energies[s].max(axis=0)
        if np.any((lo < ef) & (hi > ef)):
            return None
        below.append(int((hi <= ef).sum()))
    return below


def _gap(result: Any, kpts: np.ndarray, energies: np.ndarray) -> Gap:
    nocc = _occupied_bands(result, energies)
    none = Gap(0.0, False, float("nan"), float("nan"), None, None, 0.0, None, True)
    if nocc is None:
        return none
    nbands = energies.shape[2]
    if any(n >= nbands for n in nocc):
        raise InputError(f"nbands: all {nbands} bands are occupied; compute at least one empty band for a gap")
    if all(n == 0 for n in nocc):
        raise InputError("nbands: no occupied band along the path")
    nspin, nk = energies.shape[:2]
    top = np.full(nk, -np.inf)
    bottom = np.full(nk, np.inf)
    for s in range(nspin):
        if nocc[s] > 0:
            top = np.maximum(top, energies[s, :, nocc[s] - 1])
        bottom = np.minimum(bottom, energies[s, :, nocc[s]])
    iv, ic = int(np.argmax(top)), int(np.argmin(bottom))
    vbm, cbm = float(top[iv]), float(bottom[ic])
    if cbm <= vbm:  # overlapping bands: a (semi)metal
        return none._replace(vbm=vbm, cbm=cbm, k_vbm=kpts[iv], k_cbm=kpts[ic])
    idirect = int(np.argmin(bottom - top))
    direct = bool(np.allclose(kpts[iv], kpts[ic], atol=1e-9) or np.isclose(bottom[iv] - top[iv], cbm - vbm, rtol=0,
                                                                           atol=1e-12))
    return Gap(cbm - vbm, direct, vbm, cbm, kpts[iv], kpts[ic], float(bottom[idirect] - top[idirect]), kpts[idirect],
               False)


def _segments(x: np.ndarray, kpts: np.ndarray) -> np.ndarray:
    """Indices after which the path jumps (same axis position, different k): plots break there."""
    same_x = np.isclose(np.diff(x), 0.0, atol=1e-12)
    moved = np.abs(np.diff(kpts, axis=0)).max(axis=1) > 1e-9
    return np.nonzero(same_x & moved)[0]


class BandStructure:
    """Non-self-consistent bands along a k-path (atomic units).

    Attributes
    ----------
    kpts : ndarray (nk, 3)
        Reduced coordinates of the reciprocal vectors.
    x : ndarray (nk,)
        Path coordinate (ASE's linear k-axis, 1/Å).
    special_x : ndarray, special_labels : list[str]
        Positions and names of the special points on ``x`` (``'G'`` is printed as Γ).
    energies : ndarray (nspin, nk, nbands)
        Ha, in the SCF's convention (the SCF's eigenvalues at its own k-points are reproduced).
    fermi_level : float
        The SCF's Fermi level, Ha (the highest occupied level on the SCF's k-grid for insulators).
    path : ase.dft.kpoints.BandPath
    """

    def __init__(self, result: Any, path: Any, energies: np.ndarray):
        self.result = result
        self.path = path
        self.kpts = np.asarray(path.kpts, dtype=float)
        self.x, self.special_x, labels = path.get_linear_kpoint_axis()
        self.special_labels = list(labels)
        self.energies = energies
        self.fermi_level = float(result.fermi_level)
        self.nspin, self.nkpoints, self.nbands = energies.shape

    def gap(self) -> Gap:
        """The band gap along the path: value (Ha), direct or indirect, VBM/CBM and their k-points,
        and the smallest direct gap. Occupied bands are those the SCF filled (integer occupations)
        or that lie wholly below the Fermi level (smearing); a band crossing it makes a metal."""
        return _gap(self.result, self.kpts, self.energies)

    @property
    def vbm(self) -> float | None:
        """Valence-band maximum along the path, Ha (None for a metal)."""
        g = self.gap()
        return None if g.metal else g.vbm

    @property
    def reference(self) -> float:
        """The energy zero of plots, Ha: the VBM for an insulator, else the Fermi level."""
        g = self.gap()
        return self.fermi_level if g.metal else g.vbm

    def plot(self, ax: Any = None, emin: float | None = None, emax: float | None = None, units: str = "eV",
             reference: float | None = None):
        """Bands relative to ``reference`` (Ha; default :attr:`reference`) on the path axis, one line
        per band and spin (gid ``"band"``; spin down dashed), special points marked. ``emin``/``emax``
        are in ``units`` relative to the reference. Returns the matplotlib Figure."""
        factor, label = _unit_factor(units)
        ref = self.reference if reference is None else float(reference)
        fig, ax = _axes(ax, (6, 4.5))
        breaks = _segments(self.x, self.kpts)
        x = np.insert(np.asarray(self.x, dtype=float), breaks + 1, np.nan)
        for s in range(self.nspin):
            e = np.insert((self.energies[s] - ref) * factor, breaks + 1, np.nan, axis=0)
            style = dict(color="C0" if s == 0 else "C3", lw=1.2, ls="-" if s == 0 else "--")
            for n in range(self.nbands):
                name = ("spin up" if s == 0 else "spin down") if (self.nspin == 2 and n == 0) else "_nolegend_"
                (line,) = ax.plot(x, e[:, n], label=name, **style)
                line.set_gid("band")
        for xs in self.special_x:
            ax.axvline(xs, color="0.6", lw=0.6)
        ax.axhline(0.0, color="0.3", lw=0.6, ls=":")
        positions, ticks = [], []
        for xs, lab in zip(self.special_x, self.special_labels):
            lab = r"$\Gamma$" if lab == "G" else lab
            if positions and abs(xs - positions[-1]) < 1e-9:  # a jump: both ends share the position
                ticks[-1] = f"{ticks[-1]}|{lab}"
            else:
                positions.append(xs)
                ticks.append(lab)
        ax.set_xticks(positions)
        ax.set_xticklabels(ticks)
        ax.set_xlim(np.nanmin(x), np.nanmax(x))
        lo = np.nanmin((self.energies - ref) * factor) if emin is None else emin
        hi = np.nanmax((self.energies - ref) * factor) if emax is None else emax
        ax.set_ylim(lo, hi)
        zero = "VBM" if not self.gap().metal and reference is None else r"$E_F$" if reference is None else "reference"
        ax.set_ylabel(f"E - {zero} ({label})")
        if self.nspin == 2:
            ax.legend(loc="best", fontsize="small")
        return fig

    def to_ase(self):
        """The same bands as an ``ase.spectrum.band_structure.BandStructure`` (eV, reference = the
        plot reference)."""
        from ase.spectrum.band_structure import BandStructure as ASEBandStructure
        return ASEBandStructure(path=self.path, energies=self.energies * HARTREE_IN_EV,
                                reference=self.reference * HARTREE_IN_EV)

    def __repr__(self) -> str:
        g = self.gap()
        gap = "metal" if g.metal else f"{'direct' if g.direct else 'indirect'} gap {g.value * HARTREE_IN_EV:.4f} eV"
        return (f"BandStructure(path={''.join(self.special_labels)!r}, nk={self.nkpoints}, nbands={self.nbands}, "
                f"nspin={self.nspin}, fermi_level={self.fermi_level:.6f} Ha, {gap})")


def _band_path(result: Any, path: Any, npoints: int):
    from ase.cell import Cell
    from ase.dft.kpoints import BandPath
    cell = Cell(np.asarray(result.system.lattice, dtype=float) * BOHR_IN_ANGSTROM)
    if isinstance(path, BandPath):
        return path
    if path is None or isinstance(path, str):
        if isinstance(npoints, bool) or not isinstance(npoints, (int, np.integer)) or not 2 <= npoints <= 100_000:
            raise InputError(f"npoints: expected an integer between 2 and 100000, got {npoints!r}")
        try:
            return cell.bandpath(path, npoints=int(npoints))
        except Exception as exc:  # ASE: unknown letters, unrecognised lattice
            raise InputError(f"path: ASE cannot build the band path {path!r} for this lattice: {exc}") from exc
    kpts = np.asarray(path, dtype=float)
    if kpts.ndim != 2 or kpts.shape[1] != 3 or kpts.shape[0] < 1:
        raise InputError(f"path: expected an ASE BandPath, a string of special points or an (nk, 3) array of "
                         f"reduced k-points, got an array of shape {kpts.shape}")
    return BandPath(cell, kpts=kpts)


def band_structure(result: Any, path: Any = None, npoints: int = 100, nbands: int | None = None,
                   progress: bool = False) -> BandStructure:
    """Non-self-consistent bands of a converged SCF along a k-path.

    Parameters
    ----------
    result : SCFResult
    path : ase.dft.kpoints.BandPath, str, (nk, 3) array or None
        An ASE band path; a string of special-point letters (``"GXWKGLUWLK"``, with ASE's special
        points of the lattice, ``","`` for a jump); explicit reduced k-points; or None for ASE's
        default path of the lattice.
    npoints : int
        k-points along a path given by letters (ignored otherwise).
    nbands : int, optional
        Bands per k-point (default: the SCF's count).
    progress : bool
        A tqdm progress bar over chunks of 64 k-points.
    """
    bp = _band_path(result, path, npoints)
    energies = eigenvalues_at(result, bp.kpts, nbands=nbands, progress=progress)
    return BandStructure(result, bp, energies)


# ------------------------------------------------------------------------------------------ density of states
def _broadening(kind: str):
    """(delta(x), integral of delta up to x), x = (E - eps) / width; each integrates to 1."""
    key = str(kind).lower()
    if key in ("gaussian", "gauss"):  # the SCF's gaussian smearing (ABINIT occopt 7): exp(-x^2)/sqrt(pi)
        from scipy.special import erfc  # here: scipy.special takes 0.2 s to import
        return (lambda x: np.exp(-x * x) / np.sqrt(np.pi)), (lambda x: 0.5 * erfc(-x))
    if key in ("fermi-dirac", "fd"):  # -df/dE of the Fermi function, width kT
        return (lambda x: 0.25 / np.cosh(0.5 * np.clip(x, -1400, 1400)) ** 2), (lambda x: 0.5 * (1 + np.tanh(0.5 * x)))
    if key == "lorentzian":
        return (lambda x: 1 / (np.pi * (1 + x * x))), (lambda x: 0.5 + np.arctan(x) / np.pi)
    raise InputError(f"kind: expected 'gaussian', 'fermi-dirac' or 'lorentzian', got {kind!r}")


def _grid_kpoints(kpts: Sequence[int], shift: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """A Monkhorst-Pack grid k = (n + shift)/N reduced by time reversal (k ~ -k): points, weights."""
    size = np.asarray(kpts, dtype=int)
    if size.shape != (3,) or np.any(size < 1) or np.prod(size) > 1_000_000:
        raise InputError(f"kpts: expected 3 positive integers (at most 10^6 points), got {kpts!r}")
    n = np.stack(np.meshgrid(*[np.arange(m) for m in size], indexing="ij"), axis=-1).reshape(-1, 3)
    k = (n + np.asarray(shift, dtype=float)) / size
    k -= np.floor(k + 0.5)  # (-1/2, 1/2]
    key = lambda v: tuple(np.round(((v + 0.5) % 1.0 - 0.5) * 2 * size * 1000).astype(int))
    index: dict = {}
    points, counts = [], []
    for v in k:
        j = index.get(key(-v))
        if j is None:
            j = index.get(key(v))
        if j is None:
            index[key(v)] = len(points)
            points.append(v)
            counts.append(1)
        else:
            counts[j] += 1
    counts = np.asarray(counts, dtype=float)
    return np.asarray(points), counts / counts.sum()


class DOS:
    """Density of states, states per Ha per cell (both spin states counted without spin).

    Attributes
    ----------
    energies : ndarray (ne,)
        Ha.
    dos : ndarray (nspin, ne)
        Per spin channel; ``total`` sums them.
    integrated : ndarray (nspin, ne)
        Electrons below each energy (the exact integral of the broadened DOS).
    width : float
        Broadening, Ha; ``kind`` its shape.
    fermi_level : float
        The SCF's, Ha.
    """

    def __init__(self, energies, dos, integrated, width, kind, fermi_level, eigenvalues, weights):
        self.energies = energies
        self.dos = dos
        self.integrated = integrated
        self.width = width
        self.kind = kind
        self.fermi_level = fermi_level
        self._eigenvalues = eigenvalues
        self._weights = weights

    @property
    def nspin(self) -> int:
        return self.dos.shape[0]

    @property
    def total(self) -> np.ndarray:
        """DOS summed over spin, states/Ha/cell."""
        return self.dos.sum(axis=0)

    def electrons_below(self, energy: float) -> float:
        """Electrons in states below ``energy`` (Ha), each state broadened like the DOS."""
        _, step = _broadening(self.kind)
        degeneracy = 2.0 / self._eigenvalues.shape[0]
        x = (energy - self._eigenvalues) / self.width
        return float(degeneracy * np.einsum("k,skn->", self._weights, step(x)))

    def plot(self, ax: Any = None, units: str = "eV", emin: float | None = None, emax: float | None = None,
             reference: float | None = None):
        """DOS relative to ``reference`` (Ha; default the Fermi level) in states per ``units`` per
        cell, one line per spin channel (gid ``"dos"``; spin down mirrored below zero). Returns the
        matplotlib Figure."""
        factor, label = _unit_factor(units)
        ref = self.fermi_level if reference is None else float(reference)
        fig, ax = _axes(ax, (6, 4))
        e = (self.energies - ref) * factor
        for s in range(self.nspin):
            sign = -1.0 if s == 1 else 1.0
            name = ("spin up" if s == 0 else "spin down") if self.nspin == 2 else "DOS"
            (line,) = ax.plot(e, sign * self.dos[s] / factor, color="C0" if s == 0 else "C3", lw=1.2, label=name)
            line.set_gid("dos")
        ax.axvline(0.0, color="0.3", lw=0.6, ls=":")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xlim(e[0] if emin is None else emin, e[-1] if emax is None else emax)
        ax.set_xlabel(f"E - {'E_F' if reference is None else 'reference'} ({label})")
        ax.set_ylabel(f"DOS (states / {label} / cell)")
        if self.nspin == 2:
            ax.legend(loc="best", fontsize="small")
        return fig

    def __repr__(self) -> str:
        return (f"DOS(nspin={self.nspin}, {len(self.energies)} energies {self.energies[0]:.4f}..{self.energies[-1]:.4f} Ha, "
                f"{self.kind} width {self.width:g} Ha, fermi_level={self.fermi_level:.6f} Ha)")


def dos(result: Any, energies: Any = None, width: float | None = None, kind: str = "gaussian",
        kpts: Sequence[int] | None = None, nbands: int | None = None, npoints: int = 2001,
        progress: bool = False) -> DOS:
    """Density of states from broadened Kohn-Sham eigenvalues.

    Parameters
    ----------
    result : SCFResult
    energies : array, optional
        Energies (Ha) to evaluate at; default ``npoints`` points covering every band plus 5 widths.
    width : float, optional
        Broadening, Ha; default the SCF's smearing width, or 0.01 Ha for integer occupations.
    kind : str
        ``"gaussian"`` (the SCF's gaussian smearing: exp(-x^2)/sqrt(pi), x = (E - eps)/width),
        ``"fermi-dirac"`` or ``"lorentzian"``. With the SCF's smearing kind and width, the DOS
        integrates to the electron count at the Fermi level.
    kpts : (3,) ints, optional
        A denser Monkhorst-Pack grid (the system's shift, time reversal) solved non-self-consistently;
        default the SCF's own k-points and weights.
    nbands : int, optional
        Bands per k-point on that grid (default the SCF's count).
    """
    if width is None:
        width = result.system.temperature if result.system.smearing is not None else 0.01
        width = 0.01 if width is None else width
    width = float(width)
    if not np.isfinite(width) or width <= 0:
        raise InputError(f"width: must be a positive broadening in Ha, got {width}")
    delta, step = _broadening(kind)
    if kpts is None:
        eigenvalues, weights = result.eigenvalues, result.kweights
        if nbands is not None:
            raise InputError("nbands: only used with kpts (a new grid); the SCF's k-points have its band count")
    else:
        points, weights = _grid_kpoints(kpts, result.system.kshift)
        eigenvalues = eigenvalues_at(result, points, nbands=nbands, progress=progress)
    if energies is None:
        if isinstance(npoints, bool) or not isinstance(npoints, (int, np.integer)) or not 2 <= npoints <= 10_000_000:
            raise InputError(f"npoints: expected an integer between 2 and 10^7, got {npoints!r}")
        energies = np.linspace(eigenvalues.min() - 5 * width, eigenvalues.max() + 5 * width, int(npoints))
    energies = np.asarray(energies, dtype=float)
    if energies.ndim != 1 or energies.size < 1 or not np.all(np.isfinite(energies)):
        raise InputError("energies: expected a 1-D array of finite energies (Ha)")
    nspin, nk, nb = eigenvalues.shape
    degeneracy = 2.0 / nspin
    density = np.zeros((nspin, energies.size))
    integrated = np.zeros((nspin, energies.size))
    block = max(1, 4_000_000 // max(1, energies.size * nb))  # k-points per block: bounded temporaries
    for first in range(0, nk, block):
        w = np.asarray(weights[first:first + block], dtype=float)
        x = (energies[None, :, None, None] - eigenvalues[:, None, first:first + block, :]) / width
        density += degeneracy / width * np.einsum("k,sekn->se", w, delta(x))
        integrated += degeneracy * np.einsum("k,sekn->se", w, step(x))
    return DOS(energies, density, integrated, width, str(kind).lower(), float(result.fermi_level), eigenvalues,
               np.asarray(weights, dtype=float))

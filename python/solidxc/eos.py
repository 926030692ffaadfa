"""`eos(system, scales)`: an E(V) scan by uniform scaling of the cell and a third-order Birch-Murnaghan fit.

The fit (:func:`fit_birch_murnaghan`) knows nothing of the SCF and is tested on synthetic data; :func:`eos`
runs the scan (one FFT grid, each point warm-started from its neighbour) and hands the energies to
:meth:`EOSResult.from_energies`, which fits and checks that the minimum lies inside the scan.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from .errors import ConvergenceError, InputError, NumericalError, SolidXCError
from .scf import SCFResult, scf
from .system import System
from .units import BOHR_IN_ANGSTROM

#: 1 Ha / bohr^3 in GPa (CODATA 2018: E_h = 4.3597447222071e-18 J, a_0 = 0.529177210903e-10 m).
HARTREE_PER_BOHR3_IN_GPA = 4.3597447222071e-18 / (BOHR_IN_ANGSTROM * 1e-10) ** 3 / 1e9

#: Default scan: 7 linear scale factors of the lattice, 0.97 ... 1.03.
DEFAULT_SCALES = tuple(np.linspace(0.97, 1.03, 7))

#: Fewest scan points accepted: the fit has 4 parameters, and one more point leaves a residual to judge it by.
MIN_POINTS = 5

_ENERGY_KINDS = {"free": "energy", "zero_width": "energy_zero_width"}


# ----------------------------------------------------------------------------------------------------------
# Birch-Murnaghan
# ----------------------------------------------------------------------------------------------------------

def birch_murnaghan(volume: Any, e0: float, v0: float, b0: float, b0_prime: float) -> np.ndarray:
    """Third-order Birch-Murnaghan energy, Ha.

    E(V) = E0 + 9 V0 B0 / 16 {[(V0/V)^(2/3) - 1]^3 B0' + [(V0/V)^(2/3) - 1]^2 [6 - 4 (V0/V)^(2/3)]}
    (Birch, Phys. Rev. 71, 809 (1947)), written as E0 + 9 V0 B0 / 16 [(B0' - 4) x^3 + 2 x^2] with
    x = (V0/V)^(2/3) - 1.

    Parameters
    ----------
    volume : float or ndarray
        bohr^3.
    e0 : float
        Ha.
    v0 : float
        bohr^3.
    b0 : float
        Bulk modulus at V0, Ha/bohr^3.
    b0_prime : float
        dB/dP at V0 (dimensionless).
    """
    x = (v0 / np.asarray(volume, dtype=float)) ** (2.0 / 3.0) - 1.0
    return e0 + 9.0 * v0 * b0 / 16.0 * ((b0_prime - 4.0) * x ** 3 + 2.0 * x ** 2)


class BirchMurnaghanFit(NamedTuple):
    """Parameters of a third-order Birch-Murnaghan fit (Ha, bohr^3, Ha/bohr^3) and its residuals E - E_fit (Ha)."""

    e0: float
    v0: float
    b0: float
    b0_prime: float
    residuals: np.ndarray


def _parabola_guess(volumes: np.ndarray, energies: np.ndarray) -> tuple[float, float, float] | None:
    """(E0, V0, B0) of the least-squares parabola in V, or None if it opens downwards. V0 falls back to the
    lowest point's volume when the vertex lies far outside the data (or at V <= 0)."""
    c2, c1, c0 = np.polyfit(volumes, energies, 2)
    if not c2 > 0:
        return None
    v0 = -c1 / (2.0 * c2)
    if not 0.5 * volumes.min() < v0 < 2.0 * volumes.max():
        v0 = float(volumes[np.argmin(energies)])
    return c0 + c1 * v0 + c2 * v0 ** 2, v0, 2.0 * c2 * v0  # B = V d2E/dV2


def fit_birch_murnaghan(volumes: Sequence[float], energies: Sequence[float]) -> BirchMurnaghanFit:
    """Least-squares third-order Birch-Murnaghan fit of E(V).

    The start is the parabola in V through the points (E0, V0, B0 = V0 E''; B0' = 4). The fit runs in
    reduced units (V / V0_guess, E / (B0_guess V0_guess)) with the analytic Jacobian and tolerances near
    machine precision, so exact Birch-Murnaghan data are recovered to ~1e-10 relative.

    Parameters
    ----------
    volumes : (n,) array_like
        bohr^3, n >= 4, all positive.
    energies : (n,) array_like
        Ha.

    Returns
    -------
    BirchMurnaghanFit

    Raises
    ------
    InputError
        Fewer than 4 points, non-finite values, or data without a minimum (the parabola opens downwards).
    NumericalError
        The least-squares fit ended on non-finite parameters or V0 <= 0.
    """
    from scipy.optimize import least_squares

    volumes = np.asarray(volumes, dtype=float)
    energies = np.asarray(energies, dtype=float)
    if volumes.ndim != 1 or volumes.shape != energies.shape or volumes.size < 4:
        raise InputError(f"volumes, energies: need two 1-D arrays of the same length >= 4, got shapes "
                         f"{volumes.shape} and {energies.shape}", 1)
    if not (np.all(np.isfinite(volumes)) and np.all(np.isfinite(energies)) and np.all(volumes > 0)):
        raise InputError("volumes, energies: need finite values and positive volumes", 1)
    guess = _parabola_guess(volumes, energies)
    if guess is None:
        raise InputError("energies: E(V) has no minimum (the parabola through the points opens downwards)", 1)
    e_guess, v_ref, b_guess = guess
    e_scale = b_guess * v_ref  # Ha; B0 becomes 1 and V0 becomes 1 in reduced units
    u = volumes / v_ref
    target = (energies - e_guess) / e_scale

    def model(p):
        e0, v0, b0, bp = p
        eta = (v0 / u) ** (2.0 / 3.0)
        x = eta - 1.0
        f = (bp - 4.0) * x ** 3 + 2.0 * x ** 2
        return e0 + 9.0 / 16.0 * v0 * b0 * f, eta, x, f

    def residuals(p):
        return model(p)[0] - target

    def jacobian(p):
        e0, v0, b0, bp = p
        _, eta, x, f = model(p)
        df_dx = 3.0 * (bp - 4.0) * x ** 2 + 4.0 * x
        return np.column_stack([
            np.ones_like(u),
            9.0 / 16.0 * b0 * (f + 2.0 / 3.0 * eta * df_dx),  # dx/dv0 = (2/3) eta / v0
            9.0 / 16.0 * v0 * f,
            9.0 / 16.0 * v0 * b0 * x ** 3,
        ])

    fit = least_squares(residuals, x0=[0.0, 1.0, 1.0, 4.0], jac=jacobian, method="lm",
                        xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=10000)
    if not np.all(np.isfinite(fit.x)) or fit.x[1] <= 0:
        raise NumericalError(f"energies: the Birch-Murnaghan fit failed ({fit.message}); parameters {fit.x}", 5)
    e0, v0, b0, bp = fit.x
    e0, v0, b0 = e_guess + e_scale * e0, v_ref * v0, b0 * e_scale / v_ref
    return BirchMurnaghanFit(float(e0), float(v0), float(b0), float(bp),
                             energies - birch_murnaghan(volumes, e0, v0, b0, bp))


# ----------------------------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------------------------

class EOSResult:
    """An E(V) scan and its third-order Birch-Murnaghan fit. Atomic units: bohr, bohr^3, Ha, Ha/bohr^3.

    Attributes
    ----------
    scales : ndarray (n,)
        Linear scale factors of the lattice, ascending (1 = the input system).
    volumes : ndarray (n,)
        Cell volumes, bohr^3.
    energies : ndarray (n,)
        The fitted energies, Ha per cell: the free energy (``energy="free"``) or the zero-width energy.
    residuals : ndarray (n,)
        ``energies`` minus the fit, Ha.
    e0 : float
        Minimum energy of the fit, Ha.
    v0 : float
        Equilibrium volume, bohr^3.
    b0 : float
        Bulk modulus, Ha/bohr^3 (:attr:`b0_gpa` in GPa).
    b0_prime : float
        Pressure derivative of the bulk modulus.
    scale0 : float
        Equilibrium linear scale factor, (v0 / V(scale=1))^(1/3).
    a_ref : float
        Length that ``scale0`` multiplies, bohr: the ``a_ref`` given to :func:`eos`, or else the length of
        the first lattice vector of the input system (for an fcc primitive cell that is a/sqrt(2), not a).
    a0 : float
        ``scale0 * a_ref``, bohr (:attr:`a0_angstrom` in Å).
    energy_kind : str
        ``"free"`` or ``"zero_width"``.
    iterations : ndarray (n,) of int or None
        SCF iterations per point (None when built from energies alone).
    fft_sizes : list of tuple or None
        The FFT grid of each point.
    results : list of SCFResult or None
        The SCF results in the order of ``scales``, kept only with ``keep_results=True``.
    """

    def __init__(self, scales, volumes, energies, fit: BirchMurnaghanFit, reference_volume: float, a_ref: float,
                 energy_kind: str = "free", xc: str | None = None, iterations=None, fft_sizes=None, results=None):
        self.scales = np.asarray(scales, dtype=float)
        self.volumes = np.asarray(volumes, dtype=float)
        self.energies = np.asarray(energies, dtype=float)
        self.residuals = np.asarray(fit.residuals, dtype=float)
        self.e0, self.v0, self.b0, self.b0_prime = fit.e0, fit.v0, fit.b0, fit.b0_prime
        self.reference_volume = float(reference_volume)
        self.scale0 = (self.v0 / self.reference_volume) ** (1.0 / 3.0)
        self.a_ref = float(a_ref)
        self.a0 = self.scale0 * self.a_ref
        self.energy_kind = energy_kind
        self.xc = xc
        self.iterations = None if iterations is None else np.asarray(iterations, dtype=int)
        self.fft_sizes = fft_sizes
        self.results = results

    @classmethod
    def from_energies(cls, scales: Sequence[float], energies: Sequence[float], reference_volume: float,
                      a_ref: float = 1.0, **kwargs: Any) -> "EOSResult":
        """Fits energies already computed at linear scale factors ``scales`` of a cell of volume
        ``reference_volume`` (bohr^3); ``a_ref`` (bohr) is the length that the fitted scale multiplies.

        Raises
        ------
        InputError
            Bad ``scales`` (see :func:`eos`), or a minimum at or beyond the end of the scan; the message
            says which side to extend.
        """
        scales = _check_scales(scales)
        energies = np.asarray(energies, dtype=float)
        if energies.shape != scales.shape or not np.all(np.isfinite(energies)):
            raise InputError(f"energies: need {scales.size} finite values, one per scale, got shape "
                             f"{energies.shape}", 1)
        if not (np.isfinite(reference_volume) and reference_volume > 0):
            raise InputError(f"reference_volume: must be a positive volume in bohr^3, got {reference_volume!r}", 1)
        order = np.argsort(scales)
        scales, energies = scales[order], energies[order]
        for key in ("iterations", "fft_sizes", "results"):
            if kwargs.get(key) is not None:
                kwargs[key] = [kwargs[key][i] for i in order]
        volumes = reference_volume * scales ** 3
        _check_minimum_inside(scales, volumes, energies)
        fit = fit_birch_murnaghan(volumes, energies)
        if not (volumes[0] <= fit.v0 <= volumes[-1]) or not fit.b0 > 0:
            side = "smaller" if fit.v0 < volumes[0] else "larger"
            scale0 = (fit.v0 / reference_volume) ** (1 / 3)
            raise InputError(f"scales: the Birch-Murnaghan minimum (scale {scale0:.4f}, "
                             f"B0 = {fit.b0 * HARTREE_PER_BOHR3_IN_GPA:.1f} GPa) lies outside the scanned range "
                             f"{scales[0]:.4f} ... {scales[-1]:.4f}; extend the scan to {side} scales", 1)
        return cls(scales, volumes, energies, fit, reference_volume, a_ref, **kwargs)

    @property
    def b0_gpa(self) -> float:
        """Bulk modulus, GPa."""
        return self.b0 * HARTREE_PER_BOHR3_IN_GPA

    @property
    def a0_angstrom(self) -> float:
        """``a0`` in Å (CODATA 2018 bohr)."""
        return self.a0 * BOHR_IN_ANGSTROM

    @property
    def max_abs_residual(self) -> float:
        """Largest |E - E_fit| over the points, Ha."""
        return float(np.max(np.abs(self.residuals)))

    def energy_at(self, volume: Any) -> np.ndarray:
        """The fitted E(V), Ha, at ``volume`` (bohr^3, scalar or array)."""
        return birch_murnaghan(volume, self.e0, self.v0, self.b0, self.b0_prime)

    def plot(self, ax: Any = None) -> Any:
        """Plots the points and the fit, E - E0 (mHa) against V (bohr^3). Returns the matplotlib figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw into this Axes; by default a new figure is made with ``pyplot.subplots``.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 4.0), layout="constrained")
        else:
            fig = ax.figure
        pad = 0.02 * (self.volumes[-1] - self.volumes[0])
        v = np.linspace(self.volumes[0] - pad, self.volumes[-1] + pad, 300)
        label = "free energy" if self.energy_kind == "free" else "zero-width energy"
        if self.xc:
            label += f", {self.xc}"
        ax.plot(self.volumes, (self.energies - self.e0) * 1e3, "o", label=f"SCF ({label})")
        ax.plot(v, (self.energy_at(v) - self.e0) * 1e3, "-",
                label=(f"Birch-Murnaghan: a0 = {self.a0:.4f} bohr ({self.a0_angstrom:.4f} Å)\n"
                       f"B0 = {self.b0_gpa:.1f} GPa, B0' = {self.b0_prime:.2f}"))
        ax.axvline(self.v0, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("volume (bohr$^3$)")
        ax.set_ylabel("E - E0 (mHa)")
        ax.legend(fontsize="small")
        return fig

    def __repr__(self) -> str:
        return (f"EOSResult({self.scales.size} points, {self.energy_kind} energy: a0={self.a0:.6f} bohr "
                f"({self.a0_angstrom:.6f} Å, scale0={self.scale0:.6f}), v0={self.v0:.4f} bohr^3, "
                f"b0={self.b0:.6e} Ha/bohr^3 ({self.b0_gpa:.2f} GPa), b0_prime={self.b0_prime:.3f}, "
                f"e0={self.e0:.8f} Ha, max |residual|={self.max_abs_residual:.1e} Ha)")


def _check_scales(scales: Any) -> np.ndarray:
    try:
        values = np.asarray(scales, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"scales: expected a sequence of numbers, got {scales!r}", 1) from None
    if values.ndim != 1 or values.size < MIN_POINTS:
        raise InputError(f"scales: need at least {MIN_POINTS} linear scale factors for a Birch-Murnaghan fit "
                         f"(4 parameters), got {values.size if values.ndim == 1 else values.shape}", 1)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InputError(f"scales: every scale factor must be finite and > 0, got {values.tolist()}", 1)
    if np.unique(values).size != values.size:
        raise InputError(f"scales: values must be distinct, got {values.tolist()}", 1)
    return values


def _check_minimum_inside(scales: np.ndarray, volumes: np.ndarray, energies: np.ndarray) -> None:
    """Raises if the lowest energy is at an end of the (ascending) scan, naming the side to extend."""
    lowest = int(np.argmin(energies))
    if 0 < lowest < scales.size - 1:
        return
    side, direction = ("smallest", "smaller") if lowest == 0 else ("largest", "larger")
    hint = ""
    c2, c1, _ = np.polyfit(volumes, energies, 2)
    if c2 > 0 and -c1 / (2.0 * c2) > 0:
        vertex_scale = (-c1 / (2.0 * c2) / volumes[0]) ** (1.0 / 3.0) * scales[0]
        hint = f" (a parabola through the points puts it near scale {vertex_scale:.3f})"
    raise InputError(f"scales: the lowest energy is at the {side} scale {scales[lowest]:.4f}, so the minimum is "
                     f"not inside the scanned range {scales[0]:.4f} ... {scales[-1]:.4f}{hint}; extend the scan to "
                     f"{direction} scales", 1)


# ----------------------------------------------------------------------------------------------------------
# Scan
# ----------------------------------------------------------------------------------------------------------

def _scaled(system: System, scale: float, fft_size: Sequence[int] | None) -> System:
    """The system with lattice and Cartesian positions times ``scale`` (fractional positions fixed)."""
    return System(system.lattice * scale, [(el, pos * scale) for el, pos in system.atoms], pseudo=system.pseudo,
                  ecut=system.ecut, kpts=system.kpts, kshift=system.kshift, fft_size=fft_size, charge=system.charge,
                  smearing=system.smearing, temperature=system.temperature, magmoms=system.magmoms)


def _fft_sizes(system: System, scales: np.ndarray, fft_size: Any) -> list[tuple[int, int, int]]:
    """One grid per scale: the default grid at the largest scale, one given grid, or one given per point."""
    if fft_size is None:
        try:
            grid = _scaled(system, float(scales.max()), None).fft_size
        except SolidXCError as exc:
            raise _at_scale(exc, scales.max())
        return [tuple(grid)] * scales.size
    try:
        grids = np.asarray(fft_size, dtype=float)
    except (TypeError, ValueError):
        grids = np.empty(0)
    if grids.shape == (3,):
        grids = np.tile(grids, (scales.size, 1))
    if grids.shape != (scales.size, 3) or not np.all(grids == np.round(grids)) or not np.all(grids > 0):
        raise InputError(f"fft_size: expected (n1, n2, n3) positive integers for every point, or one such triple per "
                         f"scale ({scales.size}), got {fft_size!r}", 1)
    return [tuple(int(n) for n in row) for row in grids]


def _scan_order(scales: np.ndarray) -> list[tuple[int, int | None]]:
    """(index, index of the point to start from) for a middle-out scan over ascending ``scales``:
    from the scale closest to 1 upwards, then from it downwards."""
    middle = int(np.argmin(np.abs(scales - 1.0)))
    order = [(middle, None)]
    order += [(i, i - 1) for i in range(middle + 1, scales.size)]
    order += [(i, i + 1) for i in range(middle - 1, -1, -1)]
    return order


def _at_scale(exc: SolidXCError, scale: float) -> SolidXCError:
    """``exc`` with ``.scale`` set and a note naming the scan point; the core's message stays unchanged."""
    exc.scale = float(scale)
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(f"solidxc.eos: at scale factor {float(scale):.6g} of the lattice")
    return exc


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="eos", unit="point")


def eos(system: System, scales: Sequence[float] | None = None, xc: str = "lda,pw", *, energy: str = "free",
        a_ref: float | None = None, fft_size: Any = None, keep_results: bool = False, progress: bool = True,
        **scf_kwargs: Any) -> EOSResult:
    """Equation of state: SCF energies on a uniformly scaled cell, fitted with third-order Birch-Murnaghan.

    Each point is ``system`` with its lattice and atomic positions multiplied by a linear scale factor
    (fractional positions fixed; Ecut, k-grid, smearing, spin and pseudopotentials unchanged). The scan runs
    **middle-out**: from the scale closest to 1 up to the largest, then from that first point down to the
    smallest; each SCF starts from its neighbour's result (``start=``: the density is reused when the FFT grids
    match, the orbitals when k-points and bands match), which saves about a third of the SCF iterations.

    Parameters
    ----------
    system : System
        The cell at scale 1.
    scales : sequence of float, optional
        Linear scale factors of the lattice, >= 5 distinct positive values (default: 7 from 0.97 to 1.03).
    xc : str
        Functional, as for :func:`solidxc.scf`.
    energy : {"free", "zero_width"}
        Fit the free energy (``SCFResult.energy``, E - TS with smearing) or ``SCFResult.energy_zero_width``.
    a_ref : float, optional
        Length (bohr) that the equilibrium scale multiplies to give ``a0``, e.g. the conventional cubic lattice
        constant of the input system. Default: the length of the input system's first lattice vector.
    fft_size : (3,) ints, or one (3,) per scale, optional
        FFT grid(s). Default: the core's grid for the **largest** scale, used for every point, so that all
        energies are on one real-space grid (and the density warm start applies). One triple per scale (in the
        order of ``scales``) reproduces another code's per-point grids; then only the orbitals are reused.
    keep_results : bool
        Keep every :class:`SCFResult` in ``EOSResult.results`` (densities and eigenvalues: memory grows with the
        scan); by default only the energies are kept.
    progress : bool
        Show a tqdm progress bar when tqdm is installed (nothing otherwise).
    **scf_kwargs
        Passed to :func:`solidxc.scf` (``tol``, ``maxiter``, ``nbands``, ``mixing_beta``, ``threads``, ...);
        ``start`` is used for the first point only.

    Returns
    -------
    EOSResult

    Raises
    ------
    InputError
        Fewer than 5 scales, a non-positive scale, duplicate scales, an unknown ``energy``, a bad ``a_ref`` or
        ``fft_size``, or an energy minimum outside the scanned range (the message says which side to extend).
    ConvergenceError
        An SCF did not converge (``.history`` is that point's residual history).
    SolidXCError
        Any error of the core while building or solving one point carries ``.scale`` (that point's scale
        factor) and a note saying so; its message is the core's.
    """
    if not isinstance(system, System):
        raise TypeError(f"eos: expected a solidxc.System, got {type(system).__name__}")
    scales = _check_scales(DEFAULT_SCALES if scales is None else scales)
    if energy not in _ENERGY_KINDS:
        raise InputError(f"energy: expected one of {sorted(_ENERGY_KINDS)}, got {energy!r}", 1)
    if a_ref is None:
        a_ref = float(np.linalg.norm(system.lattice[0]))
    elif not (isinstance(a_ref, (int, float, np.floating, np.integer)) and np.isfinite(a_ref) and a_ref > 0):
        raise InputError(f"a_ref: expected a positive length in bohr, got {a_ref!r}", 1)
    grids = _fft_sizes(system, scales, fft_size)  # in the caller's order
    order = np.argsort(scales)
    scales, grids = scales[order], [grids[i] for i in order]

    # Every cell is built (and validated by the core) before the first SCF.
    systems = []
    for scale, grid in zip(scales, grids):
        try:
            systems.append(_scaled(system, float(scale), grid))
        except SolidXCError as exc:
            raise _at_scale(exc, scale)

    first_start = scf_kwargs.pop("start", None)
    n = scales.size
    energies = np.full(n, np.nan)
    iterations = np.zeros(n, dtype=int)
    results: list[SCFResult | None] = [None] * n
    middle = _scan_order(scales)[0][0]
    bar = _progress_bar(n, progress)
    try:
        for i, neighbour in _scan_order(scales):
            start = first_start if neighbour is None else results[neighbour]
            try:
                result = scf(systems[i], xc=xc, start=start, **scf_kwargs)
            except SolidXCError as exc:
                raise _at_scale(exc, scales[i])
            if not result.converged:  # raise_on_nonconvergence=False in scf_kwargs: an unconverged energy is no use
                raise _at_scale(ConvergenceError(
                    f"eos: the SCF at scale {scales[i]:.6g} did not converge in {result.iterations} iterations",
                    ConvergenceError.status, result.residual_history), scales[i])
            energies[i] = getattr(result, _ENERGY_KINDS[energy])
            iterations[i] = result.iterations
            results[i] = result
            # Free the neighbour unless a later point starts from it (the middle, until the downward leg begins).
            if not keep_results and neighbour is not None and not (neighbour == middle and i > middle):
                results[neighbour].close()
                results[neighbour] = None
            if bar is not None:
                bar.set_postfix({"scale": f"{scales[i]:.4f}", "E": f"{energies[i]:.8f} Ha", "it": result.iterations})
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not keep_results:
        for result in results:
            if result is not None:
                result.close()

    return EOSResult.from_energies(scales, energies, system.volume, a_ref, energy_kind=energy, xc=xc,
                                   iterations=iterations, fft_sizes=grids, results=results if keep_results else None)

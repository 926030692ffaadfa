"""`scf(system, xc, ...)`: runs the self-consistent field in the core and returns numpy arrays."""

from __future__ import annotations

import ctypes
import functools
import json
import weakref
from typing import NamedTuple, Callable

import numpy as np

from . import _lib
from . import functional as _functional
from .errors import BufferSizeError, InputError
from .system import System
from .units import HARTREE_IN_EV


def _free_result(handle: int) -> None:
    try:
        _lib.load().sxc_result_free(handle)
    except Exception:
        pass


class Magnetization(NamedTuple):
    """Magnetisation of the cell, Bohr magnetons."""

    total: float
    absolute: float


class Adjoints(NamedTuple):
    """Grid adjoints from :meth:`SCFResult.backward`: dL/dtheta = sum(adj_e * de/dtheta)
    + sum(adj_vrho * dvrho/dtheta) + sum(adj_vsigma * dvsigma/dtheta), in the layouts of
    :meth:`SCFResult.xc_inputs` (adj_vsigma None for LDA). ``residual`` and ``iterations``
    describe the Dyson (GMRES) solve (0 for an energy-only loss)."""

    adj_e: np.ndarray
    adj_vrho: np.ndarray
    adj_vsigma: np.ndarray | None
    residual: float
    iterations: int


class SCFResult:
    """The converged (or last) state of an SCF run. Atomic units throughout.

    Attributes
    ----------
    energy : float
        Total energy, Ha per cell; with smearing the Mermin free energy E - TS.
    energy_zero_width : float
        The energy extrapolated to zero smearing width, Ha (equals ``energy`` without smearing).
    energies : dict[str, float]
        Terms (kinetic, local, nonlocal, hartree, xc, ewald, psp_correction, and with smearing
        entropy = -TS), Ha; they sum to ``energy``.
    magnetization : Magnetization
        ``(total, absolute)``: integrals of rho_up - rho_down and of its modulus, Bohr magnetons
        per cell (zero without spin).
    eigenvalues, occupations : ndarray (nspin, nk, nband)
        Ha; electrons per state.
    kpoints : ndarray (nk, 3)
        Reduced coordinates.
    kweights : ndarray (nk,)
        Sum to 1.
    fermi_level : float
        Ha.
    density : ndarray (nspin, n1, n2, n3)
        electrons / bohr^3.
    fft_size : tuple (n1, n2, n3)
    converged : bool
    iterations : int
    residual_history : ndarray (iterations,)
        Integrated |rho_out - rho_in| per iteration, electrons.
    energy_history : ndarray (iterations,)
        Energy change per iteration, Ha.
    volume : float
        bohr^3.
    nelectrons : float
    forces : ndarray (natom, 3)
        Ha/bohr, computed on first access.
    stress : ndarray (3, 3)
        Ha/bohr^3, (1/Omega) dE/d(strain) at a fixed plane-wave set; computed on first access.
    """

    def __init__(self, handle: int, system: System, xc: str):
        self._handle = handle
        self._finalizer = weakref.finalize(self, _free_result, handle)
        self.system = system
        self.xc = xc
        lib = _lib.load()
        check = _lib.check

        nspin, nk, nband = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        fft = (ctypes.c_int * 3)()
        check(lib.sxc_result_dims(handle, ctypes.byref(nspin), ctypes.byref(nk), ctypes.byref(nband), fft))
        self.nspin, self.nkpoints, self.nbands = nspin.value, nk.value, nband.value
        self.fft_size = tuple(fft)

        def scalar(fn: Callable, ctype=ctypes.c_double):
            out = ctype()
            check(fn(handle, ctypes.byref(out)))
            return out.value

        self.energy = scalar(lib.sxc_result_energy)
        self.fermi_level = scalar(lib.sxc_result_fermi_level)
        self.energy_zero_width = scalar(lib.sxc_result_energy_zero_width)
        total, absolute = ctypes.c_double(), ctypes.c_double()
        check(lib.sxc_result_magnetization(handle, ctypes.byref(total), ctypes.byref(absolute)))
        self.magnetization = Magnetization(total.value, absolute.value)
        self.converged = bool(scalar(lib.sxc_result_converged, ctypes.c_int))
        self.iterations = scalar(lib.sxc_result_iterations, ctypes.c_int)
        self.volume = scalar(lib.sxc_result_volume)
        self.nelectrons = scalar(lib.sxc_result_nelectrons)

        nterms = scalar(lib.sxc_result_energy_term_count, ctypes.c_int)
        values = self._array(lib.sxc_result_energy_terms, (nterms,))
        names = []
        for i in range(nterms):
            name = ctypes.c_char_p()
            check(lib.sxc_result_energy_term_name(handle, i, ctypes.byref(name)))
            names.append(name.value.decode())
        self.energies = dict(zip(names, values.tolist()))

        bands = (self.nspin, self.nkpoints, self.nbands)
        self.eigenvalues = self._array(lib.sxc_result_eigenvalues, bands)
        self.occupations = self._array(lib.sxc_result_occupations, bands)
        self.kpoints = self._array(lib.sxc_result_kpoints, (self.nkpoints, 3))
        self.kweights = self._array(lib.sxc_result_kweights, (self.nkpoints,))
        self.density = self._array(lib.sxc_result_density, (self.nspin,) + self.fft_size)
        self.residual_history = self._history(lib.sxc_result_residual_history)
        self.energy_history = self._history(lib.sxc_result_energy_history)

    def _array(self, fn: Callable, shape: tuple) -> np.ndarray:
        out = np.empty(shape, dtype=np.float64)
        _lib.check(fn(self._handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), out.size))
        return out

    def _history(self, fn: Callable) -> np.ndarray:
        written = ctypes.c_size_t(0)
        out = np.empty(self.iterations, dtype=np.float64)
        status = fn(self._handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), out.size, ctypes.byref(written))
        if status == BufferSizeError.status:  # longer than iterations: size it and read again
            out = np.empty(written.value, dtype=np.float64)
            status = fn(self._handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), out.size, ctypes.byref(written))
        _lib.check(status)
        return out[: written.value]

    def xc_inputs(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The functional's inputs at the converged density, in the core's layouts: ``rho``
        (nspin=1: (N,); nspin=2: (2, N)) and, for a GGA, ``sigma`` = |grad rho|^2 blocks
        (nspin=1: (N,); nspin=2: (3, N) as uu, ud, dd), with the core's FFT gradients; None for LDA.
        N = n1 n2 n3."""
        lib = _lib.load()
        family, nsigma = ctypes.c_int(), ctypes.c_int()
        _lib.check(lib.sxc_result_xc_dims(self._handle, ctypes.byref(family), ctypes.byref(nsigma)))
        n = int(np.prod(self.fft_size))
        rho = np.empty((self.nspin, n))
        sigma = np.empty((nsigma.value, n)) if family.value == 2 else None
        ptr = ctypes.POINTER(ctypes.c_double)
        _lib.check(lib.sxc_result_xc_inputs(self._handle, rho.ctypes.data_as(ptr), rho.size,
                                            sigma.ctypes.data_as(ptr) if sigma is not None else None,
                                            0 if sigma is None else sigma.size))
        if self.nspin == 1:
            return rho[0], (sigma[0] if sigma is not None else None)
        return rho, sigma

    def backward(self, dL_dE: float = 0.0, dL_drho: np.ndarray | None = None, dL_deig: np.ndarray | None = None,
                 *, tol: float = 1e-10, maxiter: int = 100, time_limit: float | None = None) -> "Adjoints":
        """The vector-Jacobian product of the converged SCF (reverse mode, adjoint method).

        Takes the loss's plain partial derivatives with respect to ``energy`` (Ha), ``density``
        (shape (nspin, n1, n2, n3)) and ``eigenvalues`` ((nspin, nk, nband)), and returns the
        grid adjoints: the loss's sensitivity to the functional's outputs e, vrho and vsigma at
        every grid point (see :class:`Adjoints`). An energy-only loss needs no response solve;
        density and eigenvalue losses solve the Dyson equation by GMRES to relative residual
        ``tol`` (a :class:`ConvergenceError` otherwise) within ``maxiter`` GMRES iterations and,
        if given, ``time_limit`` seconds of wall clock (a :class:`ConvergenceError` whose message
        starts with ``time_limit:`` otherwise). Can be called again for another loss.
        """
        lib = _lib.load()
        n = int(np.prod(self.fft_size))
        ptr = ctypes.POINTER(ctypes.c_double)

        def as_input(value, shape, name):
            if value is None:
                return None, 0
            arr = np.ascontiguousarray(value, dtype=np.float64)
            if arr.shape != shape:
                raise InputError(f"{name}: expected shape {shape}, got {arr.shape}")
            return arr, arr.size

        drho, nrho = as_input(dL_drho, (self.nspin,) + self.fft_size, "dL_drho")
        deig, neig = as_input(dL_deig, (self.nspin, self.nkpoints, self.nbands), "dL_deig")
        family, nsigma = ctypes.c_int(), ctypes.c_int()
        _lib.check(lib.sxc_result_xc_dims(self._handle, ctypes.byref(family), ctypes.byref(nsigma)))
        adj_e = np.empty(n)
        adj_vrho = np.empty((self.nspin, n))
        adj_vsigma = np.empty((nsigma.value, n)) if family.value == 2 else None
        residual, iterations = ctypes.c_double(), ctypes.c_int()
        options = {"tol": float(tol), "maxiter": int(maxiter)}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
        options = json.dumps(options)
        _functional.check(lib.sxc_scf_backward(
            self._handle, float(dL_dE),
            drho.ctypes.data_as(ptr) if drho is not None else None, nrho,
            deig.ctypes.data_as(ptr) if deig is not None else None, neig,
            options.encode(),
            adj_e.ctypes.data_as(ptr), adj_e.size, adj_vrho.ctypes.data_as(ptr), adj_vrho.size,
            adj_vsigma.ctypes.data_as(ptr) if adj_vsigma is not None else None,
            0 if adj_vsigma is None else adj_vsigma.size,
            ctypes.byref(residual), ctypes.byref(iterations)), self.xc)
        if self.nspin == 1:
            adj_vrho = adj_vrho[0]
            adj_vsigma = adj_vsigma[0] if adj_vsigma is not None else None
        return Adjoints(adj_e, adj_vrho, adj_vsigma, residual.value, iterations.value)

    @functools.cached_property
    def forces(self) -> np.ndarray:
        """Hellmann-Feynman forces on the atoms, F = -dE/dR of ``energy``, Ha/bohr, shape
        (natom, 3), Cartesian, atoms in the system's order, symmetrised with the crystal's space
        group. Computed by the core on first access (local and nonlocal pseudopotential and Ewald
        terms at the converged density and orbitals) and kept."""
        return self._array(_lib.load().sxc_result_forces, (len(self.system.positions), 3))

    @functools.cached_property
    def stress(self) -> np.ndarray:
        """Stress tensor sigma = (1/Omega) dE/d(strain) of ``energy`` under r -> (1 + strain) r,
        Ha/bohr^3, shape (3, 3), symmetric. ABINIT's and ASE's sign: a compressed cell has negative
        stress, pressure = -trace/3. It is the derivative at a fixed plane-wave set (Miller
        indices); an energy-volume curve at fixed ecut also changes the set, which adds the Pulay
        stress that vanishes as ecut converges (``System(basis_lattice=...)`` keeps the set fixed).
        Computed by the core on first access and kept."""
        return self._array(_lib.load().sxc_result_stress, (3, 3))

    @property
    def dv(self) -> float:
        """Volume element of the FFT grid, bohr^3: ``density.sum(axis=(1, 2, 3)) * dv`` is the electron count."""
        return self.volume / float(np.prod(self.fft_size))

    @property
    def handle(self) -> int:
        """The C ABI handle (``sxc_result*``), valid until :meth:`close`."""
        return self._handle

    def close(self) -> None:
        """Frees the core's copy of the result now; the numpy arrays stay."""
        self._finalizer()

    def __repr__(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        spin = f"magnetization={self.magnetization.total:.4f} muB, " if self.nspin == 2 else ""
        return (f"SCFResult(xc={self.xc!r}, energy={self.energy:.10f} Ha ({self.energy * HARTREE_IN_EV:.6f} eV), "
                f"fermi_level={self.fermi_level:.6f} Ha, {spin}{state} in {self.iterations} iterations, "
                f"nspin={self.nspin}, nk={self.nkpoints}, nband={self.nbands}, fft={self.fft_size})")

    # ---- Band structures and densities of states (solidxc.bands) ----
    def band_structure(self, path=None, npoints: int = 100, nbands: int | None = None, progress: bool = False):
        """Non-self-consistent bands along a k-path; see :func:`solidxc.bands.band_structure`."""
        from .bands import band_structure
        return band_structure(self, path, npoints=npoints, nbands=nbands, progress=progress)

    def dos(self, energies=None, width: float | None = None, kind: str = "gaussian", kpts=None,
            nbands: int | None = None, npoints: int = 2001, progress: bool = False):
        """Density of states (states/Ha/cell); see :func:`solidxc.bands.dos`."""
        from .bands import dos
        return dos(self, energies=energies, width=width, kind=kind, kpts=kpts, nbands=nbands, npoints=npoints,
                   progress=progress)


def scf(system: System, xc: str = "lda,pw", *, tol: float = 1e-9, maxiter: int = 100,
        nbands: int | None = None, mixing_beta: float | None = None, kerker_q0: float | None = None,
        raise_on_nonconvergence: bool = True, memory_limit_bytes: float | None = None,
        verbose: bool = False, threads: int | None = None, start: "SCFResult | None" = None,
        xc_parameters: dict | None = None, density_tol: float | None = None,
        time_limit: float | None = None) -> SCFResult:
    """Runs the Kohn-Sham SCF for ``system`` with functional ``xc``.

    Parameters
    ----------
    system : System
    xc : str or functional
        Functional name: ``"lda,pw"``, ``"lda,vwn"``, ``"teter"``, ``"pbe"``, or a registered name;
        or a :class:`solidxc.functional.RegisteredFunctional`, ``Builtin`` or torch module
        (``NNLDA``, ``NNPBE``, ``HybridXC``; registered on first use).
    tol : float
        Energy-change tolerance, Ha (the density residual must also be small).
    maxiter : int
    nbands : int, optional
        Bands per k-point (default: occupied + a few).
    mixing_beta, kerker_q0 : float, optional
        Anderson/Kerker mixing parameters (core defaults: beta 1.0, 0.7 with spin; q0 0.8 / bohr).
    raise_on_nonconvergence : bool
        Raise :class:`ConvergenceError` (with ``.history``) if not converged; otherwise return
        a result with ``converged == False``.
    memory_limit_bytes : float, optional
        Ceiling for the up-front memory estimate (default: the machine's available memory).
    verbose : bool
        One line per iteration on stderr.
    threads : int, optional
        Threads over k-points (default: one per core). Results do not depend on it.
    start : SCFResult, optional
        A previous result to start from: its density (when the FFT grid and spin match) and
        orbitals (when the k-points and bands match), e.g. the previous point of a volume scan.
    density_tol : float, optional
        Density-residual threshold (integrated |rho_out - rho_in|, electrons); default
        sqrt(tol) times the electron count. Tighten it for accurate densities (density losses).
    xc_parameters : dict, optional
        Overrides of a built-in functional's named parameters, e.g. ``{"kappa": 0.9}`` for PBE.
    time_limit : float, optional
        Wall-clock limit of the SCF loop, seconds (default: none, ``maxiter`` alone bounds it).
        Checked before every iteration; an SCF still running past it raises
        :class:`ConvergenceError` whose message starts with ``time_limit:`` (``.history`` holds
        the residuals so far), whatever ``raise_on_nonconvergence`` says.

    Raises
    ------
    InputError, ConvergenceError, ResourceError, CallbackError, NumericalError
    """
    if not isinstance(system, System):
        raise TypeError(f"scf: expected a solidxc.System, got {type(system).__name__}")
    options = {"tol": tol, "maxiter": maxiter, "raise_on_nonconvergence": raise_on_nonconvergence,
               "verbose": verbose}
    for key, value in (("nbands", nbands), ("mixing_beta", mixing_beta), ("kerker_q0", kerker_q0),
                       ("memory_limit_bytes", memory_limit_bytes), ("threads", threads),
                       ("xc_parameters", xc_parameters), ("density_tol", density_tol),
                       ("time_limit", time_limit)):
        if value is not None:
            options[key] = value
    options_json = json.dumps({k: (v.item() if isinstance(v, np.generic) else v) for k, v in options.items()})
    lib = _lib.load()
    handle = ctypes.c_void_p()
    name = _functional.xc_name(xc)
    if start is None:
        status = lib.sxc_scf_forward(system.handle, name.encode(), options_json.encode(), ctypes.byref(handle))
    else:
        if not isinstance(start, SCFResult):
            raise TypeError(f"scf: start must be a solidxc.SCFResult, got {type(start).__name__}")
        status = lib.sxc_scf_forward_from(system.handle, name.encode(), options_json.encode(), start.handle,
                                          ctypes.byref(handle))
    _functional.check(status, xc)  # re-raises an exception from a Python functional's callback
    return SCFResult(handle.value, system, name)

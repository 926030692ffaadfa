"""Exchange-correlation functionals from Python: registering user (neural) functionals with the
core, evaluating any functional on numpy arrays, parameterised built-ins, and DeepChem's
``NNLDA``, ``NNPBE`` and ``HybridXC`` as torch modules.

Array layouts are the core's (include/solidxc.h), over ``np`` grid points, float64:

======  ==========================  ===================================================
nspin   rho                         sigma
======  ==========================  ===================================================
1       ``(np,)`` total density     ``(np,)`` = |grad rho|^2
2       ``(2, np)``: up, down       ``(3, np)``: up.up, up.down, down.down
======  ==========================  ===================================================

``e`` is ``(np,)``, the energy per volume (Ha/bohr^3, rho * eps_xc); ``vrho`` has rho's shape
(de/drho_s) and ``vsigma`` sigma's (de/dsigma_ab). LDAs have no sigma and no vsigma.

A Python functional is called from inside the core. An exception in it is caught, the core is
told the call failed, and :func:`check` (used by :func:`solidxc.scf` and every call here)
re-raises it after the core has returned, as :class:`~solidxc.CallbackError` whose
``__cause__`` is the original exception. ``KeyboardInterrupt`` and ``SystemExit`` are
re-raised as themselves.

The torch classes (``BaseNNXC``, ``NNLDA``, ``NNPBE``, ``HybridXC``) import torch on first
use; everything else needs only numpy.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import threading
from ctypes import POINTER, byref, c_double, c_int, c_int32
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _lib
from .errors import CallbackError, InputError

LDA = 1
GGA = 2
_FAMILY_NAMES = {LDA: "LDA", GGA: "GGA"}

#: First id the core hands to registered functionals; built-ins have smaller ids.
FIRST_USER_ID = 1000

_p_double = POINTER(c_double)


# ---- Layouts -------------------------------------------------------------------------------

def _family_code(family: Any) -> int:
    if isinstance(family, str) and family.strip().lower() in ("lda", "gga"):
        return LDA if family.strip().lower() == "lda" else GGA
    if family in (LDA, GGA) and not isinstance(family, bool):
        return int(family)
    raise InputError(f"family: expected 1 or 'lda' (LDA), 2 or 'gga' (GGA), got {family!r}", InputError.status)


def _nsigma(nspin: int) -> int:
    return 1 if nspin == 1 else 3


def _shape(blocks: int, npoints: int) -> tuple:
    return (npoints,) if blocks == 1 else (blocks, npoints)


def _as_array(values: Any, what: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.ascontiguousarray(values, dtype=np.float64)


def _density(rho: Any) -> tuple[np.ndarray, int, int]:
    """rho as a contiguous float64 array, with nspin and npoints read from its shape."""
    rho = _as_array(rho, "rho")
    if rho.ndim == 1:
        return rho, 1, rho.shape[0]
    if rho.ndim == 2 and rho.shape[0] == 2:
        return rho, 2, rho.shape[1]
    raise InputError(f"rho: expected shape (np,) or (2, np), got {rho.shape}", InputError.status)


def _matching(values: Any, what: str, blocks: int, npoints: int) -> np.ndarray:
    """An input array that must have the shape `blocks` x `npoints` gives."""
    if values is None:
        raise InputError(f"{what}: required for a GGA (shape {_shape(blocks, npoints)})", InputError.status)
    out = _as_array(values, what)
    if out.shape != _shape(blocks, npoints):
        raise InputError(f"{what}: expected shape {_shape(blocks, npoints)}, got {out.shape}", InputError.status)
    return out


def _ptr(a: Optional[np.ndarray]):
    return None if a is None else a.ctypes.data_as(_p_double)


def _params_json(params: Optional[dict]) -> Optional[bytes]:
    if not params:
        return None
    return json.dumps({str(k): float(v) for k, v in params.items()}).encode()


# ---- Stored callback exceptions ------------------------------------------------------------

class _Record:
    """The Python side of one registration: its id and the exception a callback left behind."""

    def __init__(self, name: str, family: int):
        self.name = name
        self.family = family
        self.id: Optional[int] = None
        self.active = True
        self.pending: Optional[BaseException] = None

    def fail(self, exc: BaseException) -> int:
        with _registry_lock:
            if self.pending is None:  # the first failure is the cause; later ones follow from it
                self.pending = exc
        return 1

    def take(self) -> Optional[BaseException]:
        with _registry_lock:
            exc, self.pending = self.pending, None
        return exc


_registry_lock = threading.RLock()
#: id -> record, for every registration made from Python.
_by_id: dict[int, _Record] = {}
#: normalised name -> records registered under it, oldest first (the newest active one wins,
#: as in the core's registry).
_by_name: dict[str, list[_Record]] = {}
#: Every ctypes callback object and Python function handed to the core. Never emptied: the core
#: may still hold a pointer (a result, a running SCF), and they are small.
_keep_alive: list = []
_counter = itertools.count(1)


def _normalise(name: str) -> str:
    return "".join(name.lower().split())


def _record_for(xc: Any) -> Optional[_Record]:
    """The Python registration behind `xc` (a name or an object), if any."""
    if isinstance(xc, RegisteredFunctional):
        return xc._record
    if isinstance(xc, Builtin):  # evaluated by the core itself: no callbacks
        return None
    registered = getattr(xc, "registered", None)
    if isinstance(registered, RegisteredFunctional):
        return registered._record
    name = xc if isinstance(xc, str) else getattr(xc, "name", None)
    if not isinstance(name, str):
        return None
    with _registry_lock:
        active = [r for r in _by_name.get(_normalise(name), []) if r.active]
    return active[-1] if active else None


def check(status: int, xc: Any = None) -> None:
    """:func:`solidxc._lib.check` for calls that may run registered Python callbacks.

    An exception that a callback of `xc` (a name, a :class:`RegisteredFunctional`, a
    :class:`Builtin` or a torch module from this module) stored is re-raised as
    :class:`CallbackError` with the original as ``__cause__``; KeyboardInterrupt and SystemExit
    as themselves. Without a stored exception this is ``_lib.check``.
    """
    record = _record_for(xc) if xc is not None else None
    original = record.take() if record is not None else None
    if status == _lib.SXC_OK:
        return
    error = _lib.error_for(status)
    if original is None or not isinstance(error, CallbackError):
        raise error
    if isinstance(original, (KeyboardInterrupt, SystemExit)):
        raise original
    raise CallbackError(f"{error.message} ({type(original).__name__}: {original})", error.status) from original


# ---- Evaluating any functional of the registry ---------------------------------------------

def _target(xc: Any) -> tuple[Optional[bytes], int, Optional[dict]]:
    """(name, id, params) for the C calls: by id for a registration, by name otherwise."""
    if isinstance(xc, RegisteredFunctional):
        xc._require_active()
        return None, xc.id, None
    if isinstance(xc, Builtin):
        return xc.base.encode(), -1, xc.params
    registered = getattr(xc, "as_registered", None)
    if callable(registered):
        return _target(registered())
    return xc_name(xc).encode(), -1, None


def _with_params(params: Optional[dict], extra: Optional[dict]) -> Optional[dict]:
    if not extra:
        return params
    if params is None:
        return dict(extra)
    return {**params, **extra}


def _family_of(xc: Any, name: Optional[bytes], fid: int) -> int:
    """The family of `xc`: its own attribute if it has one, else the core's record."""
    family = getattr(xc, "family", None)
    if family in (LDA, GGA):
        return family
    out_id, code, nparams = c_int32(), c_int(), c_int()
    _lib.check(_lib.load().sxc_functional_info(name, fid, byref(out_id), byref(code), byref(nparams)))
    return code.value


def info(xc: Any) -> dict:
    """What the core's registry knows about `xc`: ``{"id", "family", "parameters"}``, with
    ``family`` 1 (LDA) or 2 (GGA) and ``parameters`` the named parameters' defaults."""
    name, fid, _ = _target(xc)
    lib = _lib.load()
    out_id, family, nparams = c_int32(), c_int(), c_int()
    _lib.check(lib.sxc_functional_info(name, fid, byref(out_id), byref(family), byref(nparams)))
    parameters = {}
    buffer = ctypes.create_string_buffer(128)
    for i in range(nparams.value):
        value = c_double()
        _lib.check(lib.sxc_functional_parameter(name, fid, i, buffer, len(buffer), byref(value)))
        parameters[buffer.value.decode()] = value.value
    return {"id": out_id.value, "family": family.value, "parameters": parameters}


class _Call:
    """The checked arguments of one evaluation call: where to find the functional, the arrays in
    the core's layouts, and output arrays of rho's and sigma's shapes."""

    def __init__(self, xc: Any, rho: Any, sigma: Any, params: Optional[dict]):
        self.name, self.id, own = _target(xc)
        self.params = _params_json(_with_params(own, params))
        self.rho, self.nspin, self.npoints = _density(rho)
        self.gga = _family_of(xc, self.name, self.id) == GGA
        self.sigma = self.like_sigma(sigma, "sigma")

    def like_rho(self, values: Any, what: str) -> np.ndarray:
        return _matching(values, what, self.nspin, self.npoints)

    def like_sigma(self, values: Any, what: str) -> Optional[np.ndarray]:
        return _matching(values, what, _nsigma(self.nspin), self.npoints) if self.gga else None

    def outputs(self) -> tuple:
        """Fresh (per-point, rho-shaped, sigma-shaped or None) output arrays."""
        return np.empty(self.npoints), np.empty_like(self.rho), None if self.sigma is None else np.empty_like(self.sigma)


def eval_xc(xc: Any, rho: Any, sigma: Any = None, params: Optional[dict] = None):
    """e, vrho and vsigma (None for an LDA) of any functional: a built-in name ("lda,pw",
    "gga_x_pbe + gga_c_pbe"), a registered name or object, a :class:`Builtin` or a torch module
    of this module. `params` overrides a built-in's parameters ({"kappa": 0.9})."""
    c = _Call(xc, rho, sigma, params)
    e, vrho, vsigma = c.outputs()
    check(_lib.load().sxc_functional_eval(c.name, c.id, c.params, c.npoints, c.nspin, _ptr(c.rho), _ptr(c.sigma),
                                          _ptr(e), _ptr(vrho), _ptr(vsigma)), xc)
    return e, vrho, vsigma


def kernel_xc(xc: Any, rho: Any, sigma: Any = None, drho: Any = None, dsigma: Any = None,
              params: Optional[dict] = None):
    """The second derivatives of `xc` applied to (drho, dsigma): (dvrho, dvsigma), dvsigma None
    for an LDA. Same arguments and layouts as :func:`eval_xc`."""
    c = _Call(xc, rho, sigma, params)
    drho, dsigma = c.like_rho(drho, "drho"), c.like_sigma(dsigma, "dsigma")
    _, dvrho, dvsigma = c.outputs()
    check(_lib.load().sxc_functional_kernel(c.name, c.id, c.params, c.npoints, c.nspin, _ptr(c.rho), _ptr(c.sigma),
                                            _ptr(drho), _ptr(dsigma), _ptr(dvrho), _ptr(dvsigma)), xc)
    return dvrho, dvsigma


def param_derivative(xc: Any, param: str, rho: Any, sigma: Any = None, params: Optional[dict] = None):
    """d(e, vrho, vsigma)/d(param) of a built-in at fixed rho and sigma (vsigma's None for an
    LDA). Exact: the core carries the parameter through the energy as a dual number."""
    c = _Call(xc, rho, sigma, params)
    if c.name is None:
        raise InputError(f"xc: parameter derivatives exist for built-ins only, not for the registered {xc!r}",
                         InputError.status)
    de, dvrho, dvsigma = c.outputs()
    check(_lib.load().sxc_functional_param_derivative(c.name, c.params, str(param).encode(), c.npoints, c.nspin,
                                                      _ptr(c.rho), _ptr(c.sigma), _ptr(de), _ptr(dvrho),
                                                      _ptr(dvsigma)), xc)
    return de, dvrho, dvsigma


# ---- Registration --------------------------------------------------------------------------

class RegisteredFunctional:
    """A functional registered with the core, usable by name (or as an object) in
    :func:`solidxc.scf`. Use it as a context manager to unregister it on exit.

    Attributes
    ----------
    name : str
    id : int
        The core's id (>= 1000).
    family : int
        1 (LDA) or 2 (GGA).
    """

    def __init__(self, record: _Record):
        self._record = record

    name = property(lambda self: self._record.name)
    id = property(lambda self: self._record.id)
    family = property(lambda self: self._record.family)
    active = property(lambda self: self._record.active, doc="False once unregistered.")

    def _require_active(self) -> None:
        if not self._record.active:
            raise InputError(f"xc: functional '{self.name}' (id {self.id}) was unregistered; register it again to "
                             "use it", InputError.status)

    def unregister(self) -> None:
        """Removes the functional from the core. Calculations still using it fail at their next
        evaluation with a CallbackError; the callbacks themselves stay alive."""
        self._require_active()
        _lib.check(_lib.load().sxc_functional_unregister(self.id))
        with _registry_lock:
            self._record.active = False

    def eval(self, rho: Any, sigma: Any = None):
        """(e, vrho, vsigma) through the core, as :func:`eval_xc`."""
        return eval_xc(self, rho, sigma)

    def kernel(self, rho: Any, sigma: Any = None, drho: Any = None, dsigma: Any = None):
        """(dvrho, dvsigma) through the core, as :func:`kernel_xc`."""
        return kernel_xc(self, rho, sigma, drho, dsigma)

    def __enter__(self) -> "RegisteredFunctional":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.active:
            self.unregister()

    def __repr__(self) -> str:
        state = "active" if self.active else "unregistered"
        return f"RegisteredFunctional(name={self.name!r}, id={self.id}, family={_FAMILY_NAMES[self.family]}, {state})"


def _register(record: _Record, call: Callable[[c_int32], int], keep: tuple) -> RegisteredFunctional:
    """Runs the C registration `call`, then files the record under its id and name."""
    fid = c_int32(-1)
    _lib.check(call(byref(fid)))
    with _registry_lock:
        _keep_alive.append(keep)
        record.id = fid.value
        _by_id[record.id] = record
        _by_name.setdefault(_normalise(record.name), []).append(record)
    return RegisteredFunctional(record)


def _view(pointer, blocks: int, npoints: int, writeable: bool) -> np.ndarray:
    if npoints == 0:
        return np.empty(_shape(blocks, 0))
    a = np.ctypeslib.as_array(pointer, shape=(blocks * npoints,)).reshape(_shape(blocks, npoints))
    a.flags.writeable = writeable
    return a


def _write(pointer, blocks: int, npoints: int, value: Any, what: str, fn: Callable) -> None:
    if value is None:
        raise ValueError(f"{getattr(fn, '__name__', 'callback')} returned no {what}")
    value = _as_array(value, what)
    shape = _shape(blocks, npoints)
    if value.shape != shape:
        raise ValueError(f"{getattr(fn, '__name__', 'callback')} returned {what} of shape {value.shape}; "
                         f"expected {shape}")
    _view(pointer, blocks, npoints, True)[...] = value


def register_functional(name: str, family: Any, eval_fn: Callable, kernel_fn: Optional[Callable] = None
                        ) -> RegisteredFunctional:
    """Registers a Python functional with the core.

    Parameters
    ----------
    name : str
        Non-empty, not a built-in's name or alias. The SCF finds it by this name
        (``solidxc.scf(system, xc=name)``); a later registration under the same name wins.
    family : int or str
        1 / "lda" or 2 / "gga".
    eval_fn : callable
        ``eval_fn(rho, sigma) -> (e, vrho, vsigma)`` on read-only numpy arrays in the layouts of
        this module's docstring (sigma is None for an LDA, which may return ``(e, vrho)``).
        Results may be numpy arrays or torch tensors.
    kernel_fn : callable, optional
        ``kernel_fn(rho, sigma, drho, dsigma) -> (dvrho, dvsigma)``: the second derivatives of e
        applied to (drho, dsigma). The response and backward passes need it; the SCF does not.

    Returns
    -------
    RegisteredFunctional
    """
    family = _family_code(family)
    if not isinstance(name, str):
        raise InputError(f"name: expected a string, got {type(name).__name__}", InputError.status)
    record = _Record(name, family)
    gga = family == GGA

    def eval_trampoline(_user, npoints, nspin, rho, sigma, e, vrho, vsigma):
        try:
            n = int(npoints)
            out = eval_fn(_view(rho, nspin, n, False), _view(sigma, _nsigma(nspin), n, False) if gga else None)
            if not isinstance(out, (tuple, list)) or len(out) not in (2, 3) or (gga and len(out) != 3):
                raise ValueError(f"{getattr(eval_fn, '__name__', 'eval_fn')} must return (e, vrho, vsigma)"
                                 + ("" if gga else " or (e, vrho)"))
            _write(e, 1, n, out[0], "e", eval_fn)
            _write(vrho, nspin, n, out[1], "vrho", eval_fn)
            if gga:
                _write(vsigma, _nsigma(nspin), n, out[2], "vsigma", eval_fn)
            return 0
        except BaseException as exc:  # noqa: B036 - anything must be caught: the core is below us
            return record.fail(exc)

    def kernel_trampoline(_user, npoints, nspin, rho, sigma, drho, dsigma, dvrho, dvsigma):
        try:
            n = int(npoints)
            ns = _nsigma(nspin)
            out = kernel_fn(_view(rho, nspin, n, False), _view(sigma, ns, n, False) if gga else None,
                            _view(drho, nspin, n, False), _view(dsigma, ns, n, False) if gga else None)
            if not isinstance(out, (tuple, list)):
                out = (out, None)
            _write(dvrho, nspin, n, out[0], "dvrho", kernel_fn)
            if gga:
                _write(dvsigma, ns, n, out[1] if len(out) > 1 else None, "dvsigma", kernel_fn)
            return 0
        except BaseException as exc:  # noqa: B036
            return record.fail(exc)

    eval_cb = _lib.EVAL_CALLBACK(eval_trampoline)
    kernel_cb = _lib.KERNEL_CALLBACK(kernel_trampoline) if kernel_fn is not None else _lib.KERNEL_CALLBACK()  # NULL
    lib = _lib.load()
    return _register(record, lambda fid: lib.sxc_functional_register(name.encode(), family, eval_cb, kernel_cb, None,
                                                                     fid),
                     (eval_cb, kernel_cb, eval_fn, kernel_fn))


def xc_name(xc: Any) -> str:
    """The name to pass to the core for `xc`: a string as is; a :class:`RegisteredFunctional`,
    :class:`Builtin` or torch module of this module (registered on first use); or any object
    with a ``name`` attribute that is registered."""
    if isinstance(xc, str):
        return xc
    if isinstance(xc, RegisteredFunctional):
        xc._require_active()
        return xc.name
    if isinstance(xc, Builtin):  # registered only if it has parameter overrides
        return xc.name
    registered = getattr(xc, "as_registered", None)
    if callable(registered):
        return xc_name(registered())
    name = getattr(xc, "name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"xc: expected a functional name, a RegisteredFunctional, a solidxc.functional.Builtin or a "
                    f"torch module from solidxc.functional, got {type(xc).__name__}")


# ---- Built-ins with parameters (numpy only) ------------------------------------------------

class Builtin:
    """A built-in functional, optionally with parameter overrides, e.g. ``Builtin("pbe",
    kappa=0.9)``. Usable as ``xc`` in :func:`solidxc.scf` (with overrides it is registered
    with the core on first use, under :attr:`name`), and differentiable in its parameters
    through :meth:`param_derivative`.
    """

    def __init__(self, name: str, **params: float):
        if not isinstance(name, str):
            raise InputError(f"xc: expected a built-in name, got {type(name).__name__}", InputError.status)
        self.base = name
        found = info(name)
        if found["id"] >= FIRST_USER_ID:
            raise InputError(f"xc: '{name}' is a registered functional, not a built-in", InputError.status)
        self.family = found["family"]
        self.defaults = found["parameters"]
        self.params = {str(k).lower(): float(v) for k, v in params.items()}
        # Checks names and ranges now, through the core's own validation (on no points).
        empty = np.empty(1)
        _lib.check(_lib.load().sxc_functional_eval(name.encode(), -1, _params_json(self.params), 0, 1, _ptr(empty),
                                                   _ptr(empty), _ptr(empty), _ptr(empty), _ptr(empty)))
        self._registered: Optional[RegisteredFunctional] = None

    @property
    def parameters(self) -> dict:
        """Every named parameter with the value in effect."""
        return {**self.defaults, **self.params}

    @property
    def name(self) -> str:
        """The built-in's name without overrides; otherwise the name this instance is registered
        under (registered now if it is not yet)."""
        return self.base if not self.params else self.as_registered().name

    def as_registered(self) -> RegisteredFunctional:
        """This functional registered with the core (once; later calls return the same)."""
        if self._registered is None or not self._registered.active:
            text = ",".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
            self._registered = self.register(f"{self.base}[{text}]#{next(_counter)}")
        return self._registered

    def register(self, name: str) -> RegisteredFunctional:
        """Registers this parameterised built-in under `name` for use by name."""
        record = _Record(name, self.family)
        lib = _lib.load()
        return _register(record, lambda fid: lib.sxc_functional_register_builtin(
            name.encode(), self.base.encode(), _params_json(self.params), fid), ())

    def eval(self, rho: Any, sigma: Any = None):
        """(e, vrho, vsigma) at these parameter values."""
        return eval_xc(self, rho, sigma)

    def kernel(self, rho: Any, sigma: Any = None, drho: Any = None, dsigma: Any = None):
        """(dvrho, dvsigma), as :func:`kernel_xc`."""
        return kernel_xc(self, rho, sigma, drho, dsigma)

    def param_derivative(self, param: str, rho: Any, sigma: Any = None):
        """d(e, vrho, vsigma)/d(param) at these parameter values, as :func:`param_derivative`."""
        return param_derivative(self, param, rho, sigma)

    def parameter_gradients(self, result: Any, adjoints: Any, names: Optional[Sequence[str]] = None) -> dict:
        """dL/d(parameter) for the loss whose grid adjoints ``adjoints`` came from
        ``result.backward(...)`` (an SCF run with this functional): sum(adj_e de/dp)
        + sum(adj_vrho dvrho/dp) + sum(adj_vsigma dvsigma/dp), with the exact parameter
        derivatives at the converged density. ``names`` defaults to every named parameter."""
        rho, sigma = result.xc_inputs()
        if names is None:
            names = list(info(self)["parameters"])
        out = {}
        for name in names:
            de, dvrho, dvsigma = self.param_derivative(name, rho, sigma)
            total = float(np.sum(adjoints.adj_e * de) + np.sum(adjoints.adj_vrho * dvrho))
            if dvsigma is not None and adjoints.adj_vsigma is not None:
                total += float(np.sum(adjoints.adj_vsigma * dvsigma))
            out[name] = total
        return out

    def __getstate__(self) -> dict:
        # A registration belongs to this process's core; a copy registers itself when used.
        return {**self.__dict__, "_registered": None}

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in sorted(self.params.items()))
        return f"Builtin({self.base!r}{extra})"


# ---- Torch modules (DeepChem's NNLDA, NNPBE, HybridXC) -------------------------------------

#: 2 (3 pi^2)^(1/3): DeepChem's NNPBE normalises |grad n| / (this * n^(4/3)).
_S_FACTOR = 6.187335452560271
#: DeepChem's safenorm eps (per Cartesian component) and safepow eps.
_SAFENORM_EPS = 1e-15
_SAFEPOW_EPS = 1e-12
#: -(3/4) (3/pi)^(1/3): the uniform electron gas's exchange energy per volume over n^(4/3).
_EX_UNIF = -0.7385587663820224
#: DeepChem's offset in xi = (n_up - n_down) / (n + 1e-18).
_XI_EPS = 1e-18

_TORCH_NAMES = ("BaseNNXC", "NNLDA", "NNPBE", "NNEnhancement", "HybridXC")
_torch_classes: Optional[dict] = None


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError("solidxc.functional: NNLDA, NNPBE and HybridXC need PyTorch (pip install torch)") from exc
    return torch


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        return _build_torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_torch_classes() -> dict:
    """Defines the torch modules on first use, so that importing solidxc does not import torch."""
    global _torch_classes
    if _torch_classes is not None:
        return _torch_classes
    torch = _import_torch()
    from torch.autograd.function import once_differentiable

    def leaf(x: Any) -> "torch.Tensor":
        """x as a float64 tensor that autograd can differentiate with respect to."""
        if isinstance(x, torch.Tensor):
            x = x.to(torch.float64)
            return x if x.requires_grad else x.detach().clone().requires_grad_(True)
        return torch.tensor(np.array(x, dtype=np.float64)).requires_grad_(True)

    def constant(x: Any) -> "torch.Tensor":
        """x as a float64 tensor outside any graph (a copy of a numpy array, which may be read-only)."""
        if isinstance(x, torch.Tensor):
            return x.detach().to(torch.float64)
        return torch.tensor(np.array(x, dtype=np.float64))

    def numpy(t: Optional["torch.Tensor"]) -> Optional[np.ndarray]:
        return None if t is None else np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)

    def spin_parts(rho: "torch.Tensor"):
        """(n, xi), each (np, 1), as DeepChem's NNLDA forms them."""
        if rho.dim() == 1:
            n = rho.unsqueeze(-1)
            return n, torch.zeros_like(n)
        if rho.dim() == 2 and rho.shape[0] == 2:
            up, down = rho[0].unsqueeze(-1), rho[1].unsqueeze(-1)
            n = up + down
            return n, (up - down) / (n + _XI_EPS)
        raise ValueError(f"rho: expected shape (np,) or (2, np), got {tuple(rho.shape)}")

    def total_sigma(rho: "torch.Tensor", sigma: "torch.Tensor") -> "torch.Tensor":
        """|grad n|^2 of the total density: sigma, or sigma_uu + 2 sigma_ud + sigma_dd with spin."""
        return sigma if rho.dim() == 1 else sigma[0] + 2 * sigma[1] + sigma[2]

    class _BaseEnergy(torch.autograd.Function):
        """e of a core functional; backward gives vrho and vsigma from the same core call as
        differentiable outputs of `_BasePotentials`, whose backward is the core's kernel."""

        @staticmethod
        def forward(ctx, rho, sigma, base):
            e, vrho, vsigma = eval_xc(base, numpy(rho), numpy(sigma))
            ctx.base = base
            ctx.potentials = (vrho, vsigma)
            ctx.save_for_backward(rho, sigma)
            return torch.from_numpy(e)

        @staticmethod
        def backward(ctx, grad_e):
            rho, sigma = ctx.saved_tensors
            if sigma is None:
                vrho = _BasePotentials.apply(rho, None, ctx.base, ctx.potentials)
                return grad_e * vrho, None, None
            vrho, vsigma = _BasePotentials.apply(rho, sigma, ctx.base, ctx.potentials)
            return grad_e * vrho, grad_e * vsigma, None

    class _BasePotentials(torch.autograd.Function):
        """(vrho[, vsigma]) of a core functional. The Hessian is symmetric, so the vector-Jacobian
        product is the kernel applied to the incoming gradients."""

        @staticmethod
        def forward(ctx, rho, sigma, base, potentials):
            ctx.base = base
            ctx.save_for_backward(rho, sigma)
            vrho, vsigma = potentials
            if sigma is None:
                return torch.from_numpy(vrho.copy())
            return torch.from_numpy(vrho.copy()), torch.from_numpy(vsigma.copy())

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_vrho, grad_vsigma=None):
            rho, sigma = ctx.saved_tensors
            dvrho, dvsigma = kernel_xc(ctx.base, numpy(rho), numpy(sigma), numpy(grad_vrho), numpy(grad_vsigma))
            return (torch.from_numpy(dvrho), None if dvsigma is None else torch.from_numpy(dvsigma), None, None)

    class BaseNNXC(torch.nn.Module):
        """Base of the torch XC modules: ``get_edensityxc(rho, sigma) -> e`` (energy per volume,
        shape (np,)) in the core's layouts, plus the potentials, the kernel and registration."""

        _registered: Optional[RegisteredFunctional] = None

        @property
        def family(self) -> int:
            raise NotImplementedError

        def get_edensityxc(self, rho: "torch.Tensor", sigma: Optional["torch.Tensor"] = None) -> "torch.Tensor":
            raise NotImplementedError

        def forward(self, rho, sigma=None):
            return self.get_edensityxc(rho, sigma)

        def getparamnames(self, methodname: str = "", prefix: str = "") -> list:
            """Names of the trainable parameters (DeepChem's BaseNNXC API)."""
            nnprefix = prefix if prefix == "" else prefix[:-1]
            return [name for name, _ in self.named_parameters(prefix=nnprefix)]

        def xc_outputs(self, rho, sigma=None, create_graph: bool = True):
            """(e, vrho, vsigma) as float64 tensors; vsigma is None for an LDA.

            e comes from the module; vrho and vsigma are ``torch.autograd.grad(e.sum(), (rho,
            sigma), create_graph=create_graph)``. With ``create_graph=True`` all three stay
            differentiable with respect to the module's parameters, so that
            ``torch.autograd.backward([e, vrho, vsigma], [adj_e, adj_vrho, adj_vsigma])``
            accumulates the parameter gradients of an SCF loss. rho and sigma may be numpy arrays
            or tensors (a tensor that already requires grad is used as is).
            """
            rho = leaf(rho)
            sigma = leaf(sigma) if self.family == GGA else None
            inputs = (rho,) if sigma is None else (rho, sigma)
            with torch.enable_grad():
                e = self.get_edensityxc(rho, sigma)
                grads = torch.autograd.grad(e.sum(), inputs, create_graph=create_graph, allow_unused=True)
            grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
            if not create_graph:
                e = e.detach()
            return e, grads[0], (grads[1] if sigma is not None else None)

        def kernel_outputs(self, rho, sigma=None, drho=None, dsigma=None):
            """(dvrho, dvsigma): the Hessian of e with respect to (rho, sigma) applied to
            (drho, dsigma), by double backward (a Hessian-vector product). Detached tensors."""
            rho = leaf(rho)
            sigma = leaf(sigma) if self.family == GGA else None
            inputs = (rho,) if sigma is None else (rho, sigma)
            with torch.enable_grad():
                _, vrho, vsigma = self.xc_outputs(rho, sigma, create_graph=True)
                dot = (vrho * constant(drho)).sum()
                if sigma is not None:
                    dot = dot + (vsigma * constant(dsigma)).sum()
                if not dot.requires_grad:  # e linear in rho and sigma
                    grads = [None] * len(inputs)
                else:
                    grads = torch.autograd.grad(dot, inputs, allow_unused=True)
            grads = [torch.zeros_like(x) if g is None else g.detach() for g, x in zip(grads, inputs)]
            return grads[0], (grads[1] if sigma is not None else None)

        def register(self, name: Optional[str] = None) -> RegisteredFunctional:
            """Registers this module with the core (eval through :meth:`xc_outputs`, kernel through
            :meth:`kernel_outputs`) and returns the registration; ``solidxc.scf(system, xc=module)``
            also does this on first use. The module's current parameters are used at every call."""
            name = name or f"{type(self).__name__.lower()}#{next(_counter)}"

            # torch runs single-threaded inside the callbacks: the core is already parallel over
            # k-points, and torch's intra-op threads on grid-sized arrays made an SCF with a
            # network 6x slower (Al, 16^3 grid, 2 cores); it also makes the results independent
            # of the caller's torch thread count.
            def eval_fn(rho, sigma):
                with single_threaded():
                    e, vrho, vsigma = self.xc_outputs(rho, sigma, create_graph=False)
                    return numpy(e), numpy(vrho), numpy(vsigma)

            def kernel_fn(rho, sigma, drho, dsigma):
                with single_threaded():
                    dvrho, dvsigma = self.kernel_outputs(rho, sigma, drho, dsigma)
                    return numpy(dvrho), numpy(dvsigma)

            eval_fn.__name__ = f"{type(self).__name__}.xc_outputs"
            kernel_fn.__name__ = f"{type(self).__name__}.kernel_outputs"
            self._registered = register_functional(name, self.family, eval_fn, kernel_fn)
            return self._registered

        def as_registered(self) -> RegisteredFunctional:
            """The registration, made now if there is none (or it was unregistered)."""
            if self._registered is None or not self._registered.active:
                self.register()
            return self._registered

        @property
        def registered(self) -> Optional[RegisteredFunctional]:
            return self._registered

        def __getstate__(self):
            # A registration belongs to this process's core; a copy registers itself when used.
            state = dict(super().__getstate__())
            state.pop("_registered", None)
            return state

        @property
        def name(self) -> str:
            """The registered name (registering the module if needed)."""
            return self.as_registered().name

    class single_threaded:
        """torch.set_num_threads(1) for the duration (restored after)."""

        def __enter__(self):
            self.previous = torch.get_num_threads()
            if self.previous != 1:
                torch.set_num_threads(1)

        def __exit__(self, *exc):
            if self.previous != 1:
                torch.set_num_threads(self.previous)
            return False

    def mlp(ninp: int, nhid: int, ndepths: int, activation: str) -> "torch.nn.Module":
        """DeepChem's _construct_nn_model: [Linear, activation] x ndepths, then Linear(nhid, 1,
        bias=False), in float64. activation "softplus" is modeltype 1; "expm1" puts exp(x) - 1
        after the last hidden layer, as modeltype 2 does."""
        if activation not in ("softplus", "expm1"):
            raise ValueError(f"activation: expected 'softplus' or 'expm1', got {activation!r}")
        if ndepths < 1 or nhid < 1:
            raise ValueError(f"nhid and ndepths must be >= 1, got nhid={nhid}, ndepths={ndepths}")

        class ExpM1(torch.nn.Module):
            def forward(self, x):
                return torch.exp(x) - 1

        layers = []
        for i in range(ndepths):
            layers.append(torch.nn.Linear(ninp if i == 0 else nhid, nhid))
            last = i == ndepths - 1
            layers.append(ExpM1() if activation == "expm1" and last else torch.nn.Softplus())
        layers.append(torch.nn.Linear(nhid, 1, bias=False))
        return torch.nn.Sequential(*layers).to(torch.float64)

    def network(nnmodel, nhid, ndepths, activation, ninp_expected: int, cls: str) -> "torch.nn.Module":
        if isinstance(nnmodel, torch.nn.Module):
            return nnmodel
        if isinstance(nnmodel, int) and not isinstance(nnmodel, bool):
            if nnmodel != ninp_expected:
                raise ValueError(f"{cls}: ninp must be {ninp_expected} (its inputs), got {nnmodel}")
            return mlp(nnmodel, nhid, ndepths, activation)
        raise TypeError(f"{cls}: expected a torch.nn.Module or ninp (int), got {type(nnmodel).__name__}")

    class _DeepChemNNXC(BaseNNXC):
        """NNLDA and NNPBE: a network of `_ninp` inputs, given (DeepChem's ``NNLDA(nnmodel)``) or
        built as DeepChem's _construct_nn_model does (``NNLDA(ninp, nhid, ndepths, activation)``)."""

        _ninp = 0
        _family = 0

        def __init__(self, nnmodel: "torch.nn.Module | int | None" = None, nhid: int = 10, ndepths: int = 1,
                     activation: str = "softplus"):
            super().__init__()
            nnmodel = self._ninp if nnmodel is None else nnmodel
            self.nnmodel = network(nnmodel, nhid, ndepths, activation, self._ninp, type(self).__name__)

        @property
        def family(self) -> int:
            return self._family

    class NNLDA(_DeepChemNNXC):
        """DeepChem's neural LDA: e = nnmodel(n, xi) * n with n the total density and
        xi = (n_up - n_down) / (n + 1e-18) (0 without spin).

        ``NNLDA(nnmodel)`` as in DeepChem (nnmodel maps (..., 2) to (..., 1), float64), or
        ``NNLDA(2, nhid, ndepths=1, activation="softplus")`` to build DeepChem's default
        network (_construct_nn_model).
        """

        _ninp = 2
        _family = LDA

        def get_edensityxc(self, rho, sigma=None):
            n, xi = spin_parts(rho)
            return (self.nnmodel(torch.cat((n, xi), dim=-1)) * n).squeeze(-1)

    class NNPBE(_DeepChemNNXC):
        """DeepChem's neural GGA: e = nnmodel(n, xi, s) * n with
        s = |grad n| / (2 (3 pi^2)^(1/3) n^(4/3)), computed as DeepChem's safe operations do:
        |grad n| = sqrt(sigma_n + 3e-30) and n^(-4/3) = (n^2 + 1e-24)^(-2/3).

        Spin: sigma_n = |grad(n_up + n_down)|^2 = sigma_uu + 2 sigma_ud + sigma_dd (DeepChem's
        NNPBE also uses the total gradient), clamped at 0 against rounding.

        ``NNPBE(nnmodel)`` (inputs (..., 3)) or ``NNPBE(3, nhid, ndepths=1, activation="softplus")``.
        """

        _ninp = 3
        _family = GGA

        def get_edensityxc(self, rho, sigma=None):
            if sigma is None:
                raise ValueError("NNPBE is a GGA: sigma is required")
            n, xi = spin_parts(rho)
            total = total_sigma(rho, sigma)
            grad_norm = torch.sqrt(total.clamp(min=0) + 3 * _SAFENORM_EPS ** 2).unsqueeze(-1)
            s = grad_norm / _S_FACTOR * torch.sqrt(n * n + _SAFEPOW_EPS ** 2) ** (-4.0 / 3.0)
            return (self.nnmodel(torch.cat((n, xi, s), dim=-1)) * n).squeeze(-1)

    class NNEnhancement(BaseNNXC):
        """A neural GGA built for training on solids (``solidxc train``'s default network), not a
        DeepChem class: an exchange-like energy density times a network of bounded inputs,

            e = e_x^unif(n) * nnmodel(u, zeta^2, p~),   e_x^unif(n) = -(3/4) (3/pi)^(1/3) n^(4/3),

        with u = n^(1/3) / (1 + n^(1/3)), zeta = (n_up - n_down) / n and p~ = p / (1 + p), where
        p = s^2 = sigma / (4 (3 pi^2)^(2/3) n^(8/3)) is PBE's reduced gradient squared.

        Why not NNPBE: DeepChem's NNPBE feeds the raw s = |grad n| / n^(4/3) to a softplus network
        and multiplies by n. In a density tail s grows like n^(-1/3) (until DeepChem's safepow eps
        caps n^(-4/3) near n ~ 1e-12), far outside what the network saw in bulk solids, and the
        potential follows (22 Ha in an exponential tail with a random network, in the test; graphene's
        SCF diverged with a trained NNPBE);
        de/dsigma ~ 1/|grad n| is also singular where grad n = 0. Here every input lies in [0, 1],
        the energy density vanishes like n^(4/3) and both potentials stay finite: dp/dsigma is
        finite (s^2, not s), and where n -> 0 the factors 1/(1 + p)^2 and n^(4/3) win.

        ``uniform_gas=True`` multiplies the network by p~ as well, so the correction vanishes where
        the density is uniform (s = 0) and the functional keeps its base's uniform-gas limit: the
        network can only change how the energy responds to density gradients, as PBEsol's mu does.

        ``NNEnhancement(nnmodel)`` (inputs (..., 3), float64) or ``NNEnhancement(3, nhid, ndepths,
        activation)`` for DeepChem's default network shape.
        """

        def __init__(self, nnmodel: "torch.nn.Module | int | None" = None, nhid: int = 10, ndepths: int = 1,
                     activation: str = "softplus", uniform_gas: bool = False):
            super().__init__()
            nnmodel = 3 if nnmodel is None else nnmodel
            self.nnmodel = network(nnmodel, nhid, ndepths, activation, 3, "NNEnhancement")
            self.uniform_gas = bool(uniform_gas)

        @property
        def family(self) -> int:
            return GGA

        def get_edensityxc(self, rho, sigma=None):
            if sigma is None:
                raise ValueError("NNEnhancement is a GGA: sigma is required")
            n, zeta = spin_parts(rho)
            total = total_sigma(rho, sigma)
            n = n.clamp(min=0)
            cube_root = n ** (1.0 / 3.0)
            n43 = n * cube_root
            u = cube_root / (1 + cube_root)
            p = total.clamp(min=0).unsqueeze(-1) / (_S_FACTOR ** 2 * (n43 * n43 + _SAFEPOW_EPS ** 2))
            bounded = p / (1 + p)
            out = self.nnmodel(torch.cat((u, zeta * zeta, bounded), dim=-1))
            if self.uniform_gas:
                out = out * bounded
            return (_EX_UNIF * n43 * out).squeeze(-1)

    class HybridXC(BaseNNXC):
        """DeepChem's HybridXC: e = a * e_NN + b * e_base with trainable a (aweight) and b (bweight).

        Parameters
        ----------
        xcstr : str or Builtin
            The base functional, evaluated by the core: a SolidXC name ("lda,pw", "pbe") or a
            libxc/DeepChem string the registry knows ("lda_x + lda_c_pw",
            "gga_x_pbe + gga_c_pbe"), or a :class:`Builtin` with parameter overrides. Its
            derivatives are the core's: exact first derivatives, and the kernel for the second.
        nnmodel : torch.nn.Module or BaseNNXC
            A network, wrapped in NNLDA if the base is an LDA and NNPBE otherwise (as DeepChem
            does), or an NNLDA/NNPBE module used as is.
        aweight0, bweight0 : float
            Initial a and b.
        """

        def __init__(self, xcstr: "str | Builtin", nnmodel: "torch.nn.Module", aweight0: float = 0.0,
                     bweight0: float = 1.0):
            super().__init__()
            self.base = xcstr if isinstance(xcstr, Builtin) else Builtin(xcstr)
            self.xcstr = xcstr if isinstance(xcstr, str) else repr(xcstr)
            if isinstance(nnmodel, BaseNNXC):
                self.nnxc = nnmodel
            else:
                self.nnxc = NNLDA(nnmodel) if self.base.family == LDA else NNPBE(nnmodel)
            if self.nnxc.family == GGA and self.base.family == LDA:
                raise ValueError("HybridXC: a GGA network needs a GGA base (the LDA base has no sigma)")
            self.aweight = torch.nn.Parameter(torch.tensor(float(aweight0), dtype=torch.float64))
            self.bweight = torch.nn.Parameter(torch.tensor(float(bweight0), dtype=torch.float64))
            self.weight_activation = torch.nn.Identity()

        @property
        def family(self) -> int:
            return self.base.family

        def get_edensityxc(self, rho, sigma=None):
            nn = self.nnxc.get_edensityxc(rho, sigma if self.nnxc.family == GGA else None)
            base = _BaseEnergy.apply(rho, sigma if self.base.family == GGA else None, self.base)
            return nn * self.weight_activation(self.aweight) + base * self.weight_activation(self.bweight)

    classes = {"BaseNNXC": BaseNNXC, "NNLDA": NNLDA, "NNPBE": NNPBE, "NNEnhancement": NNEnhancement,
               "HybridXC": HybridXC}
    for cls in classes.values():  # so that pickle (torch.save of a whole module) finds them here
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    _torch_classes = classes
    return classes


__all__ = [
    "LDA", "GGA", "RegisteredFunctional", "register_functional", "Builtin", "eval_xc", "kernel_xc",
    "param_derivative", "info", "check", "xc_name", *_TORCH_NAMES,
]

"""Finds and loads libsolidxc.so, declares the C signatures and maps status codes to exceptions.

The library is looked up, in order, at

1. ``$SOLIDXC_LIBRARY`` if that variable is set (and only there),
2. ``solidxc/libsolidxc.so`` inside this package (what ``pip install`` puts there),
3. ``.build/release/libsolidxc.so`` in the source tree (``swift build -c release``).

Calls go through :class:`ctypes.CDLL`, which releases the GIL for the duration of each call,
so an SCF in one Python thread does not block the others.
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_double, c_int, c_int32, c_int64, c_size_t, c_void_p
from pathlib import Path

from .errors import STATUS_EXCEPTIONS, ConvergenceError, InternalError, SolidXCError

LIBRARY_NAME = "libsolidxc.so"

SXC_OK = 0

_lock = threading.Lock()
_lib = None

_p_int = POINTER(c_int)
_p_double = POINTER(c_double)
_p_size = POINTER(c_size_t)
_p_handle = POINTER(c_void_p)

#: sxc_eval_cb and sxc_kernel_cb of include/solidxc.h (user functionals; see solidxc.functional).
EVAL_CALLBACK = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_int, _p_double, _p_double, _p_double, _p_double,
                                 _p_double)
KERNEL_CALLBACK = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_int, _p_double, _p_double, _p_double, _p_double,
                                   _p_double, _p_double)

#: name -> (argtypes); every function returns int except sxc_version and sxc_last_error.
_SIGNATURES = {
    "sxc_last_error_history": [_p_double, c_size_t, _p_size],
    "sxc_system_create": [c_char_p, _p_handle],
    "sxc_system_free": [c_void_p],
    "sxc_system_volume": [c_void_p, _p_double],
    "sxc_system_nelectrons": [c_void_p, _p_double],
    "sxc_system_fft_size": [c_void_p, _p_int],
    "sxc_system_symmetry": [c_void_p, _p_int, _p_int],
    "sxc_result_xc_dims": [c_void_p, _p_int, _p_int],
    "sxc_result_xc_inputs": [c_void_p, _p_double, c_size_t, _p_double, c_size_t],
    "sxc_scf_backward": [c_void_p, c_double, _p_double, c_size_t, _p_double, c_size_t, c_char_p,
                         _p_double, c_size_t, _p_double, c_size_t, _p_double, c_size_t, _p_double, _p_int],
    "sxc_scf_forward": [c_void_p, c_char_p, c_char_p, _p_handle],
    "sxc_scf_forward_from": [c_void_p, c_char_p, c_char_p, c_void_p, _p_handle],
    "sxc_result_free": [c_void_p],
    "sxc_result_dims": [c_void_p, _p_int, _p_int, _p_int, _p_int],
    "sxc_result_energy": [c_void_p, _p_double],
    "sxc_result_fermi_level": [c_void_p, _p_double],
    "sxc_result_energy_zero_width": [c_void_p, _p_double],
    "sxc_result_magnetization": [c_void_p, _p_double, _p_double],
    "sxc_result_converged": [c_void_p, _p_int],
    "sxc_result_iterations": [c_void_p, _p_int],
    "sxc_result_volume": [c_void_p, _p_double],
    "sxc_result_nelectrons": [c_void_p, _p_double],
    "sxc_result_energy_term_count": [c_void_p, _p_int],
    "sxc_result_energy_terms": [c_void_p, _p_double, c_size_t],
    "sxc_result_energy_term_name": [c_void_p, c_int, POINTER(c_char_p)],
    "sxc_result_eigenvalues": [c_void_p, _p_double, c_size_t],
    "sxc_result_occupations": [c_void_p, _p_double, c_size_t],
    "sxc_result_kpoints": [c_void_p, _p_double, c_size_t],
    "sxc_result_kweights": [c_void_p, _p_double, c_size_t],
    "sxc_result_density": [c_void_p, _p_double, c_size_t],
    "sxc_result_forces": [c_void_p, _p_double, c_size_t],
    "sxc_result_stress": [c_void_p, _p_double, c_size_t],
    "sxc_result_residual_history": [c_void_p, _p_double, c_size_t, _p_size],
    "sxc_result_energy_history": [c_void_p, _p_double, c_size_t, _p_size],
    # Functionals (solidxc.functional)
    "sxc_functional_register": [c_char_p, c_int, EVAL_CALLBACK, KERNEL_CALLBACK, c_void_p, POINTER(c_int32)],
    "sxc_functional_register_builtin": [c_char_p, c_char_p, c_char_p, POINTER(c_int32)],
    "sxc_functional_unregister": [c_int32],
    "sxc_functional_info": [c_char_p, c_int32, POINTER(c_int32), _p_int, _p_int],
    "sxc_functional_parameter": [c_char_p, c_int32, c_int, c_char_p, c_size_t, _p_double],
    "sxc_functional_eval": [c_char_p, c_int32, c_char_p, c_int64, c_int, _p_double, _p_double, _p_double, _p_double,
                            _p_double],
    "sxc_functional_kernel": [c_char_p, c_int32, c_char_p, c_int64, c_int, _p_double, _p_double, _p_double,
                              _p_double, _p_double, _p_double],
    "sxc_functional_param_derivative": [c_char_p, c_char_p, c_char_p, c_int64, c_int, _p_double, _p_double,
                                        _p_double, _p_double, _p_double],
    # Band structures (solidxc.bands)
    "sxc_result_bands": [c_void_p, _p_double, c_size_t, c_int, _p_double, c_size_t],
}


def candidate_paths() -> list[Path]:
    """Where the library is looked for, in order."""
    env = os.environ.get("SOLIDXC_LIBRARY")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    return [here / LIBRARY_NAME, here.parent.parent / ".build" / "release" / LIBRARY_NAME]


def _declare(lib: ctypes.CDLL) -> None:
    lib.sxc_version.argtypes = []
    lib.sxc_version.restype = c_char_p
    lib.sxc_last_error.argtypes = []
    lib.sxc_last_error.restype = c_char_p
    for name, argtypes in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = c_int


def load() -> ctypes.CDLL:
    """The loaded library (loaded once, on first use)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in candidate_paths():
            if not path.is_file():
                tried.append(f"{path} (not found)")
                continue
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as exc:
                tried.append(f"{path} ({exc})")
                continue
            _declare(lib)
            _lib = lib
            return lib
        hint = ("set SOLIDXC_LIBRARY to the path of libsolidxc.so, run `pip install .`, or build it with "
                "`swift build -c release -Xswiftc -static-stdlib --product solidxc`")
        raise ImportError("solidxc: cannot load " + LIBRARY_NAME + "; tried:\n  " + "\n  ".join(tried) + "\n" + hint)


def library_path() -> str:
    """Path of the loaded library."""
    return load()._name


def version() -> str:
    """Version string of the loaded library."""
    return load().sxc_version().decode()


def last_error() -> str:
    """This thread's last error message from the library."""
    raw = load().sxc_last_error()
    return raw.decode("utf-8", errors="replace") if raw else ""


def last_error_history() -> list[float]:
    """The history attached to this thread's last error (residuals of a convergence failure)."""
    lib = load()
    n = c_size_t(0)
    lib.sxc_last_error_history(None, 0, ctypes.byref(n))
    if n.value == 0:
        return []
    buf = (c_double * n.value)()
    if lib.sxc_last_error_history(buf, n.value, ctypes.byref(n)) != SXC_OK:
        return []
    return list(buf)


def error_for(status: int) -> SolidXCError:
    """The exception for a failed call, built from this thread's last error."""
    message = last_error()
    cls = STATUS_EXCEPTIONS.get(status)
    if cls is None:
        return InternalError(f"unknown status {status} from libsolidxc: {message}", status)
    if cls is ConvergenceError:
        return ConvergenceError(message, status, history=last_error_history())
    return cls(message, status)


def check(status: int) -> None:
    """Raises the matching :class:`SolidXCError` subclass when ``status`` is not SXC_OK."""
    if status != SXC_OK:
        raise error_for(status)

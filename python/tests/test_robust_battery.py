"""The bad-input battery (issue 8): every case ends in a SolidXCError subclass whose message names
the field or the handle, through the Python API and through the raw C ABI (ctypes), each in its own
interpreter, so that a crash (a signal) or a hang (the timeout) fails that case alone.

A case is ``(error, field, python, abi)``. ``python()`` uses the public Python API
(``solidxc.System``, ``solidxc.scf``, ``SCFResult.backward``, ``register_functional``, ...);
``abi()`` calls the C entry points through ctypes and turns the failing status into the exception
``solidxc._lib.error_for`` maps it to. Where the Python API cannot express the raw input (a NULL
output pointer, a buffer it sizes itself), its path exercises the nearest thing it does expose, and
the case says so. The child checks the exception's class, that its message contains ``field``,
that its status matches the class, and that failed creators left their out-handle NULL and failed
accessors wrote nothing into the caller's buffer.

Run one case by hand: ``python python/tests/test_robust_battery.py json_malformed abi``.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import solidxc  # noqa: E402  (conftest puts the source tree on the path when needed)
from conftest import si_atoms, si_lattice  # noqa: E402
from solidxc import (BufferSizeError, CallbackError, ConvergenceError, HandleError, InputError,  # noqa: E402
                     ResourceError, SolidXCError, _lib)
from solidxc.functional import eval_xc, kernel_xc, register_functional  # noqa: E402

pytestmark = pytest.mark.fast

#: Per-case wall-clock limit of the child interpreter: past it the case is a hang.
CASE_TIMEOUT = 120.0

CASES: dict = {}


def case(name: str, error, field):
    """Registers a case: `error` is one SolidXCError subclass and `field` the text the message must
    contain, or either is a (python, abi) pair when the Python layer catches the input before the
    core does (and names it in its own terms)."""
    def register(cls):
        CASES[name] = (error, field, cls.python, cls.abi)
        return cls
    return register


# ---- Inputs -------------------------------------------------------------------------------------

def si_kwargs(**overrides) -> dict:
    args = dict(lattice=si_lattice(), atoms=si_atoms(), ecut=5.0, kpts=(1, 1, 1))
    args.update(overrides)
    return args


def py_si(**overrides) -> solidxc.System:
    return solidxc.System(**si_kwargs(**overrides))


def si_spec(**overrides) -> dict:
    spec = {"lattice": si_lattice(), "atoms": [{"element": e, "position": list(p)} for e, p in si_atoms()],
            "ecut": 5, "kpts": [1, 1, 1]}
    spec.update(overrides)
    return spec


def si_json(**overrides) -> bytes:
    return json.dumps(si_spec(**overrides)).encode()


def without(key: str) -> bytes:
    spec = si_spec()
    del spec[key]
    return json.dumps(spec).encode()


def al_kwargs(**overrides) -> dict:
    a = 4.05 / 0.52917721092
    args = dict(lattice=[[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]], atoms=[("Al", (0, 0, 0))],
                ecut=5.0, kpts=(2, 2, 2), smearing="fermi-dirac")
    args.update(overrides)
    return args


def al_spec(**overrides) -> dict:
    args = al_kwargs()
    spec = {"lattice": args["lattice"], "atoms": [{"element": "Al", "position": [0, 0, 0]}], "ecut": 5,
            "kpts": [2, 2, 2], "smearing": "fermi-dirac"}
    spec.update(overrides)
    return spec


def py_result(**options) -> solidxc.SCFResult:
    return solidxc.scf(py_si(), tol=1e-8, **options)


P = ctypes.POINTER(ctypes.c_double)


def ptr(a: np.ndarray):
    return a.ctypes.data_as(P)


# ---- The raw C ABI --------------------------------------------------------------------------------

def lib():
    return _lib.load()


def fail(status: int):
    """The exception a failing status maps to; a successful call is itself a failure of the case."""
    if status == 0:
        raise AssertionError("the call succeeded; expected an error")
    raise _lib.error_for(status)


def abi_create(text: bytes):
    """sxc_system_create, checking that a failure leaves the out-handle NULL."""
    handle = ctypes.c_void_p()
    status = lib().sxc_system_create(text, ctypes.byref(handle))
    if status != 0:
        assert handle.value is None, "a failed sxc_system_create wrote a handle"
        fail(status)
    return handle


def abi_forward(system, xc: bytes = b"lda,pw", options: bytes | None = b'{"tol": 1e-8}'):
    handle = ctypes.c_void_p()
    status = lib().sxc_scf_forward(system, xc, options, ctypes.byref(handle))
    if status != 0:
        assert handle.value is None, "a failed sxc_scf_forward wrote a handle"
        fail(status)
    return handle


def abi_result():
    return abi_forward(abi_create(si_json()))


def abi_dims(result):
    nspin, nk, nband = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    fft = (ctypes.c_int * 3)()
    assert lib().sxc_result_dims(result, ctypes.byref(nspin), ctypes.byref(nk), ctypes.byref(nband), fft) == 0
    return nspin.value, nk.value, nband.value, tuple(fft)


def untouched(buffer: np.ndarray, sentinel: float = -7.0):
    assert np.all(buffer == sentinel), "a failed call wrote into the caller's buffer"


def abi_backward(result, dL_dE=0.0, drho=None, deig=None, options=None, n_e=None, n_vrho=None):
    nspin, _, _, fft = abi_dims(result)
    n = int(np.prod(fft))
    adj_e, adj_vrho = np.full(n, -7.0), np.full(nspin * n, -7.0)
    residual, iterations = ctypes.c_double(), ctypes.c_int()
    status = lib().sxc_scf_backward(result, dL_dE, None if drho is None else ptr(drho), 0 if drho is None else drho.size,
                                    None if deig is None else ptr(deig), 0 if deig is None else deig.size, options,
                                    ptr(adj_e), n if n_e is None else n_e, ptr(adj_vrho),
                                    nspin * n if n_vrho is None else n_vrho, None, 0,
                                    ctypes.byref(residual), ctypes.byref(iterations))
    if status != 0:
        untouched(adj_e)
        untouched(adj_vrho)
    fail(status)


#: ctypes callback objects handed to the core: kept alive for the life of the child.
_callbacks: list = []


def abi_register(name: bytes, eval_fn, kernel_fn=None, family: int = 1) -> int:
    ev = _lib.EVAL_CALLBACK(eval_fn)
    ke = _lib.KERNEL_CALLBACK(kernel_fn) if kernel_fn is not None else _lib.KERNEL_CALLBACK()
    _callbacks.extend([ev, ke])
    fid = ctypes.c_int32(-1)
    status = lib().sxc_functional_register(name, family, ev, ke, None, ctypes.byref(fid))
    if status != 0:
        fail(status)
    return fid.value


def lda_pw_into(npoints, nspin, rho, e, vrho):
    """Fills e and vrho with LDA-PW through the core (for callbacks that work)."""
    n = int(npoints) * nspin
    rho_a = np.ctypeslib.as_array(rho, shape=(n,)).copy()
    out_e, out_v = np.empty(int(npoints)), np.empty(n)
    assert lib().sxc_functional_eval(b"lda,pw", -1, None, npoints, nspin, ptr(rho_a), None, ptr(out_e),
                                     ptr(out_v), None) == 0
    np.ctypeslib.as_array(e, shape=(int(npoints),))[:] = out_e
    np.ctypeslib.as_array(vrho, shape=(n,))[:] = out_v


def lda_pw(rho, sigma):
    return eval_xc("lda,pw", rho)


def lda_pw_kernel(rho, sigma, drho, dsigma):
    return kernel_xc("lda,pw", rho, None, drho)


# ---- JSON -------------------------------------------------------------------------------------

@case("json_malformed", InputError, "json: unexpected character 'b' at offset 1")
class _:
    def python(): solidxc.System.from_json("{bad")
    def abi(): abi_create(b"{bad")


@case("json_truncated", InputError, "json: unexpected end of input")
class _:
    def python(): solidxc.System.from_json(si_json()[:-7])
    def abi(): abi_create(si_json()[:-7])


@case("json_trailing_garbage", InputError, "json: unexpected 'x' after the end of the value")
class _:
    def python(): solidxc.System.from_json(si_json() + b" x")
    def abi(): abi_create(si_json() + b" x")


@case("json_huge_text", InputError, "json: input is longer than the limit")
class _:
    text = b" " * (5 * 1024 * 1024) + si_json()
    def python(text=text): solidxc.System.from_json(text)
    def abi(text=text): abi_create(text)


@case("json_huge_array", InputError, "lattice")
class _:
    # 2 MiB of numbers in one lattice row: under the size limit, refused by shape.
    row = [0.5] * 400_000
    def python(row=row): py_si(lattice=[row, [1, 0, 0], [0, 0, 1]])
    def abi(row=row): abi_create(si_json(lattice=[row, [1, 0, 0], [0, 0, 1]]))


@case("json_deeply_nested", InputError, "json: nesting deeper than 64 levels")
class _:
    # Python's encoder allows 200 levels; the raw text is 100000 deep (no recursion in the parser).
    def python(): py_si(kpts=json.loads("[" * 200 + "]" * 200))
    def abi(): abi_create(b'{"kpts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


@case("json_not_an_object", InputError, "json: expected an object")
class _:
    def python(): solidxc.System.from_json("[1, 2]")
    def abi(): abi_create(b"[1, 2]")


@case("json_invalid_utf8", InputError, "json: invalid UTF-8")
class _:
    text = si_json().replace(b'"Si"', b'"S\xff"', 1)
    def python(text=text): solidxc.System.from_json(text)
    def abi(text=text): abi_create(text)


@case("json_lone_surrogate", InputError, "json: unpaired surrogate")
class _:
    def python(): py_si(atoms=[("\ud800", (0, 0, 0))])
    def abi(): abi_create(si_json(atoms=[{"element": "\ud800", "position": [0, 0, 0]}]))


@case("json_duplicate_key", InputError, 'json: duplicate key "ecut"')
class _:
    text = si_json()[:-1] + b', "ecut": 6}'
    def python(text=text): solidxc.System.from_json(text)
    def abi(text=text): abi_create(text)


@case("json_unknown_key", InputError, "ecutt: unknown key")
class _:
    def python(): solidxc.System.from_json(si_json(ecutt=5))
    def abi(): abi_create(si_json(ecutt=5))


@case("json_missing_key", InputError, "ecut: required key is missing")
class _:
    def python(): solidxc.System.from_json(without("ecut"))
    def abi(): abi_create(without("ecut"))


@case("type_ecut_string", InputError, 'ecut: expected a number, got the string "20"')
class _:
    def python(): py_si(ecut="20")
    def abi(): abi_create(si_json(ecut="20"))


@case("type_kpts_fraction", InputError, "kpts[2]: expected an integer, got 2.5")
class _:
    def python(): py_si(kpts=(1, 1, 2.5))
    def abi(): abi_create(si_json(kpts=[1, 1, 2.5]))


@case("type_lattice_null", InputError, "lattice[1][2]: expected a number, got null")
class _:
    lattice = [[0, 5, 5], [5, 0, None], [5, 5, 0]]
    def python(lattice=lattice): py_si(lattice=lattice)
    def abi(lattice=lattice): abi_create(si_json(lattice=lattice))


@case("type_element_number", InputError, "atoms[0].element: expected a string")
class _:
    def python(): py_si(atoms=[(14, (0, 0, 0))])
    def abi(): abi_create(si_json(atoms=[{"element": 14, "position": [0, 0, 0]}]))


@case("type_pseudo_map_value", InputError, "pseudo.Si: expected a string")
class _:
    def python(): py_si(pseudo={"Si": 3})
    def abi(): abi_create(si_json(pseudo={"Si": 3}))


# ---- Physical validation -------------------------------------------------------------------------

@case("lattice_nan", InputError, "lattice")
class _:
    lattice = [[0, 5, 5], [5, 0, float("nan")], [5, 5, 0]]
    def python(lattice=lattice): py_si(lattice=lattice)
    def abi(lattice=lattice): abi_create(si_json(lattice=lattice))


@case("lattice_singular", InputError, "lattice")
class _:
    lattice = [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
    def python(lattice=lattice): py_si(lattice=lattice, atoms=[("Si", (0, 0, 0))])
    def abi(lattice=lattice): abi_create(si_json(lattice=lattice, atoms=[{"element": "Si", "position": [0, 0, 0]}]))


@case("unknown_element", InputError, "atoms[1].element: unknown element 'Xx'")
class _:
    atoms = [("Si", (0, 0, 0)), ("Xx", (2.0, 2.0, 2.0))]
    def python(atoms=atoms): py_si(atoms=atoms)
    def abi(atoms=atoms): abi_create(si_json(atoms=[{"element": e, "position": list(p)} for e, p in atoms]))


@case("atoms_overlapping", InputError, "atoms")
class _:
    atoms = [("Si", (0, 0, 0)), ("Si", (0.05, 0, 0))]
    def python(atoms=atoms): py_si(atoms=atoms)
    def abi(atoms=atoms): abi_create(si_json(atoms=[{"element": e, "position": list(p)} for e, p in atoms]))


@case("pseudo_file_missing", InputError, "pseudo")
class _:
    def python(): py_si(pseudo="/nonexistent/solidxc/Si.gth")
    def abi(): abi_create(si_json(pseudo="/nonexistent/solidxc/Si.gth"))


@case("pseudo_endless_device", InputError, "pseudo")
class _:
    # /dev/zero never ends: the core once read it until memory ran out.
    def python(): py_si(pseudo="/dev/zero")
    def abi(): abi_create(si_json(pseudo="/dev/zero"))


def fifo() -> str:
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "Si.gth")
    os.mkfifo(path)
    return path


@case("pseudo_fifo", InputError, "pseudo")
class _:
    # A FIFO with no writer blocks a reader forever: the core once hung here.
    def python(): py_si(pseudo={"Si": fifo()})
    def abi(): abi_create(si_json(pseudo={"Si": fifo()}))


@case("no_atoms", InputError, "atoms: no atoms given")
class _:
    def python(): py_si(atoms=[])
    def abi(): abi_create(si_json(atoms=[]))


@case("no_electrons", InputError, "charge")
class _:
    # Si2 has 8 valence electrons; a +8 cell has none left.
    def python(): py_si(charge=8)
    def abi(): abi_create(si_json(charge=8))


@case("charged_cell_odd_electrons", InputError, "smearing")
class _:
    # +1 leaves 7 electrons: no whole bands without smearing or spin.
    def python(): py_si(charge=1)
    def abi(): abi_create(si_json(charge=1))


@case("charged_cell_too_many_electrons", InputError, "charge")
class _:
    def python(): py_si(charge=-1e7)
    def abi(): abi_create(si_json(charge=-1e7))


@case("charge_not_finite", InputError, "charge")
class _:
    def python(): py_si(charge=float("inf"))
    def abi(): abi_create(si_json(charge=float("inf")))


@case("too_many_atoms", InputError, "atoms: 2500 atoms exceeds the limit")
class _:
    atoms = [("H", (10.0 * (i % 20), 10.0 * (i // 20 % 20), 10.0 * (i // 400))) for i in range(2500)]
    def python(atoms=atoms): py_si(lattice=np.eye(3) * 200, atoms=atoms)
    def abi(atoms=atoms): abi_create(si_json(lattice=(np.eye(3) * 200).tolist(),
                                             atoms=[{"element": e, "position": list(p)} for e, p in atoms]))


@case("ecut_exhausts_memory", ResourceError, "ecut")
class _:
    # One Si in a 40 bohr cube at 2000 Ha: an FFT grid of ~1600^3, refused from the estimate.
    box = [[40.0, 0, 0], [0, 40.0, 0], [0, 0, 40.0]]
    def python(box=box): solidxc.System(box, [("Si", (0, 0, 0))], ecut=2000.0, kpts=(1, 1, 1))
    def abi(box=box): abi_create(si_json(lattice=box, atoms=[{"element": "Si", "position": [0, 0, 0]}], ecut=2000))


@case("scf_memory_limit", ResourceError, "ecut")
class _:
    def python(): solidxc.scf(py_si(), memory_limit_bytes=1000.0)
    def abi(): abi_forward(abi_create(si_json()), options=b'{"memory_limit_bytes": 1000}')


@case("kgrid_exhausts_memory", ResourceError, "ecut")
class _:
    # 10^6 k-points of silicon at 20 Ha: the orbitals alone would need about 200 GB.
    def python(): solidxc.scf(py_si(kpts=(100, 100, 100), symmetry=False, ecut=20.0))
    def abi(): abi_forward(abi_create(si_json(kpts=[100, 100, 100], symmetry=False, ecut=20)))


@case("kgrid_too_many_points", InputError, "kpts: [200, 200, 200] has more than 10^6 points")
class _:
    def python(): py_si(kpts=(200, 200, 200))
    def abi(): abi_create(si_json(kpts=[200, 200, 200]))


# ---- Spin ---------------------------------------------------------------------------------------

@case("spin_magmoms_length", InputError, "magmoms: has 1 entries for 2 atoms")
class _:
    def python(): py_si(magmoms=[1.0])
    def abi(): abi_create(si_json(magmoms=[1.0]))


@case("spin_magmom_above_valence", InputError, "magmoms[0]")
class _:
    def python(): py_si(magmoms=[5.0, 0.0])
    def abi(): abi_create(si_json(magmoms=[5.0, 0.0]))


@case("spin_total_moment_above_electrons", InputError, "magmoms: the initial moments add up to 8")
class _:
    # +6 leaves 2 electrons, which cannot carry 8 Bohr magnetons.
    def python(): py_si(magmoms=[4.0, 4.0], charge=6, smearing="fermi-dirac")
    def abi(): abi_create(si_json(magmoms=[4.0, 4.0], charge=6, smearing="fermi-dirac"))


@case("spin_magmom_nan", InputError, "magmoms[1]")
class _:
    def python(): py_si(magmoms=[0.0, float("nan")])
    def abi(): abi_create(si_json(magmoms=[0.0, float("nan")]))


@case("spin_loss_of_the_wrong_spin_layout", InputError, "dL_drho")
class _:
    # A spin-polarised result given an unpolarised density gradient.
    def python():
        r = solidxc.scf(py_si(magmoms=[0.5, 0.5]), tol=1e-8)
        r.backward(0.0, np.zeros((1,) + r.fft_size))
    def abi():
        res = abi_forward(abi_create(si_json(magmoms=[0.5, 0.5])))
        nspin, _, _, fft = abi_dims(res)
        assert nspin == 2
        abi_backward(res, drho=np.zeros(int(np.prod(fft))))


@case("temperature_without_smearing", InputError, "temperature")
class _:
    def python(): py_si(temperature=0.01)
    def abi(): abi_create(si_json(temperature=0.01))


# ---- SCF options ----------------------------------------------------------------------------------

@case("options_wrong_type", InputError, 'tol: expected a number, got the string "small"')
class _:
    def python(): solidxc.scf(py_si(), tol="small")
    def abi(): abi_forward(abi_create(si_json()), options=b'{"tol": "small"}')


@case("options_malformed_json", InputError, "json:")
class _:
    # Python escapes a lone surrogate as \ud800, which the core's JSON reader refuses.
    def python(): solidxc.scf(py_si(), "pbe", xc_parameters={"\ud800": 1.0})
    def abi(): abi_forward(abi_create(si_json()), options=b'{"tol": 1e-8,')


@case("options_maxiter_not_integer", InputError, "maxiter: expected an integer, got 10.5")
class _:
    def python(): solidxc.scf(py_si(), maxiter=10.5)
    def abi(): abi_forward(abi_create(si_json()), options=b'{"maxiter": 10.5}')


@case("options_negative_nbands", InputError, "nbands")
class _:
    def python(): solidxc.scf(py_si(), nbands=-3)
    def abi(): abi_forward(abi_create(si_json()), options=b'{"nbands": -3}')


@case("options_zero_threads", InputError, "threads")
class _:
    def python(): solidxc.scf(py_si(), threads=0)
    def abi(): abi_forward(abi_create(si_json()), options=b'{"threads": 0}')


@case("options_bad_time_limit", InputError, "time_limit")
class _:
    def python(): solidxc.scf(py_si(), time_limit=-1.0)
    def abi(): abi_forward(abi_create(si_json()), options=b'{"time_limit": 0}')


@case("nbands_too_few_for_the_metal", InputError, "nbands")
class _:
    def python(): solidxc.scf(solidxc.System(**al_kwargs()), nbands=1)
    def abi(): abi_forward(abi_create(json.dumps(al_spec()).encode()), options=b'{"nbands": 1}')


# ---- Handles ------------------------------------------------------------------------------------

@case("handle_null", HandleError, "system handle is NULL")
class _:
    def python():
        system = solidxc.System.__new__(solidxc.System)
        system._handle = None
        solidxc.scf(system)
    def abi(): abi_forward(None)


@case("handle_freed", HandleError, "is not a live system handle")
class _:
    def python():
        system = py_si()
        system._finalizer()
        solidxc.scf(system)
    def abi():
        handle = abi_create(si_json())
        assert lib().sxc_system_free(handle) == 0
        fail(lib().sxc_system_volume(handle, ctypes.byref(ctypes.c_double())))


@case("handle_double_free", HandleError, "is not a live result handle")
class _:
    # Python's close() is idempotent: the second close is a no-op and the next use names the handle.
    def python():
        r = py_result()
        r.close()
        r.close()
        r.backward(1.0)
    def abi():
        res = abi_result()
        assert lib().sxc_result_free(res) == 0
        fail(lib().sxc_result_free(res))


@case("handle_foreign", HandleError, "is not a live system handle")
class _:
    buffer = ctypes.create_string_buffer(64)
    def python(buffer=buffer):
        system = py_si()
        system._handle = ctypes.addressof(buffer)
        solidxc.scf(system)
    def abi(buffer=buffer): fail(lib().sxc_system_free(ctypes.addressof(buffer)))


@case("handle_wrong_kind", HandleError, "is a result handle, not a system")
class _:
    def python():
        system, result = py_si(), py_result()
        system._handle = result.handle
        solidxc.scf(system)
    def abi():
        res = abi_result()
        fail(lib().sxc_system_volume(res, ctypes.byref(ctypes.c_double())))


# ---- Buffers and sizes ----------------------------------------------------------------------------

@case("buffer_too_small", (InputError, BufferSizeError), ("dL_drho", "density [nspin][n1][n2][n3] needs"))
class _:
    # Python sizes its own buffers: the nearest it exposes is a caller array of the wrong size.
    def python():
        r = py_result()
        r.backward(0.0, np.zeros((1, 2, 2, 2)))
    def abi():
        res = abi_result()
        nspin, _, _, fft = abi_dims(res)
        n = nspin * int(np.prod(fft))
        out = np.full(n, -7.0)
        status = lib().sxc_result_density(res, ptr(out), n - 1)
        untouched(out)
        fail(status)


@case("buffer_output_too_small", (InputError, BufferSizeError), ("dL_deig", "adj_e"))
class _:
    # Python sizes the adjoint outputs itself; a wrong-shaped eigenvalue gradient is the nearest.
    def python(): py_result().backward(0.0, dL_deig=np.zeros(7))
    def abi():
        res = abi_result()
        _, _, _, fft = abi_dims(res)
        abi_backward(res, dL_dE=1.0, n_e=int(np.prod(fft)) - 1)


@case("buffer_null_output", BufferSizeError, "NULL")
class _:
    # No public Python call passes NULL: this path goes through the package's checked call
    # (solidxc._lib.check) on a handle the Python API made.
    def python():
        r = py_result()
        _lib.check(_lib.load().sxc_result_energy(r.handle, None))
    def abi():
        res = abi_result()
        fail(lib().sxc_result_energy(res, None))


@case("negative_nbands", InputError, "nbands: must be between 1 and 100000, got -1")
class _:
    def python(): solidxc.band_structure(py_result(), nbands=-1)
    def abi():
        res = abi_result()
        out = np.full(8, -7.0)
        status = lib().sxc_result_bands(res, ptr(np.zeros(3)), 1, -1, ptr(out), out.size)
        untouched(out)
        fail(status)


@case("negative_npoints", InputError, ("maxiter", "npoints"))
class _:
    # Python derives npoints from the array's shape; a negative count it can pass is maxiter.
    def python(): solidxc.scf(py_si(), maxiter=-5)
    def abi():
        buf = np.full(4, -7.0)
        status = lib().sxc_functional_eval(b"lda,pw", -1, None, -5, 1, ptr(np.ones(4)), None, ptr(buf), ptr(buf), None)
        untouched(buf)
        fail(status)


@case("negative_count_wraps", InputError, "nk")
class _:
    # size_t(-1) k-points: refused by range before any read. Python derives nk from its k-path,
    # so its path goes through the package's checked call (solidxc._lib.check).
    def python():
        r = py_result()
        _lib.check(_lib.load().sxc_result_bands(r.handle, ptr(np.zeros(3)), ctypes.c_size_t(-1).value, 4,
                                                ptr(np.zeros(4)), 4))
    def abi():
        res = abi_result()
        out = np.full(4, -7.0)
        status = lib().sxc_result_bands(res, ptr(np.zeros(3)), ctypes.c_size_t(-1).value, 4, ptr(out), 4)
        untouched(out)
        fail(status)


@case("energy_term_index_out_of_range", InputError, "i: energy term index -1")
class _:
    # SCFResult reads every term by a valid index: the Python path uses solidxc._lib.check.
    def python():
        r = py_result()
        _lib.check(_lib.load().sxc_result_energy_term_name(r.handle, -1, ctypes.byref(ctypes.c_char_p())))
    def abi():
        name = ctypes.c_char_p()
        fail(lib().sxc_result_energy_term_name(abi_result(), -1, ctypes.byref(name)))


# ---- Functionals ------------------------------------------------------------------------------------

@case("unknown_functional_name", InputError, "xc: ")
class _:
    def python(): solidxc.scf(py_si(), xc="lda,nonexistent")
    def abi(): abi_forward(abi_create(si_json()), xc=b"lda,nonexistent")


@case("unknown_functional_id", InputError, "xc: ")
class _:
    def python():
        f = register_functional("battery-gone", "lda", lda_pw)
        f.unregister()
        eval_xc(f, np.ones(3))
    def abi():
        buf = np.full(3, -7.0)
        status = lib().sxc_functional_eval(None, 424242, None, 3, 1, ptr(np.ones(3)), None, ptr(buf), ptr(buf), None)
        untouched(buf)
        assert "424242" in _lib.last_error()
        fail(status)


@case("unregister_unknown_id", InputError, "xc: no registered functional has id 424242")
class _:
    def python():
        f = register_functional("battery-twice", "lda", lda_pw)
        _lib.check(_lib.load().sxc_functional_unregister(f.id))
        _lib.check(_lib.load().sxc_functional_unregister(424242))
    def abi(): fail(lib().sxc_functional_unregister(424242))


@case("register_bad_family", InputError, "family")
class _:
    def python(): register_functional("battery-family", 7, lda_pw)
    def abi(): abi_register(b"battery-family", lambda *a: 0, family=7)


@case("register_builtin_name", InputError, "name")
class _:
    def python(): register_functional("PBE", "gga", lda_pw)
    def abi(): abi_register(b" Lda,PW ", lambda *a: 0)


@case("callback_raises", CallbackError, "battery-raises")
class _:
    def python():
        def boom(rho, sigma):
            raise RuntimeError("the network blew up")
        solidxc.scf(py_si(), register_functional("battery-raises", "lda", boom))
    def abi():
        # An exception inside a raw ctypes callback is printed and the call returns an unspecified
        # int with the outputs untouched: a nonzero status, or else the NaN the core pre-filled,
        # makes the core fail naming the functional.
        def boom(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            raise RuntimeError("the network blew up")
        abi_register(b"battery-raises", boom)
        abi_forward(abi_create(si_json()), xc=b"battery-raises")


@case("callback_returns_nan", CallbackError, "battery-nan")
class _:
    def python():
        def nan(rho, sigma):
            e, v, _ = eval_xc("lda,pw", rho)
            v = v.copy()
            v[..., 3] = np.nan
            return e, v
        solidxc.scf(py_si(), register_functional("battery-nan", "lda", nan))
    def abi():
        def nan(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            lda_pw_into(npoints, nspin, rho, e, vrho)
            vrho[3] = float("nan")
            return 0
        abi_register(b"battery-nan", nan)
        abi_forward(abi_create(si_json()), xc=b"battery-nan")


@case("callback_returns_failure", CallbackError, "battery-status")
class _:
    def python():
        def wrong(rho, sigma):
            return np.zeros(3), np.zeros(3)  # wrong shapes: the wrapper returns a failure status
        solidxc.scf(py_si(), register_functional("battery-status", "lda", wrong))
    def abi():
        abi_register(b"battery-status", lambda *a: 7)
        abi_forward(abi_create(si_json()), xc=b"battery-status")


@case("callback_infinite_energy", CallbackError, "battery-inf")
class _:
    def python():
        def inf(rho, sigma):
            e, v, _ = eval_xc("lda,pw", rho)
            return np.full_like(e, np.inf), v
        solidxc.scf(py_si(), register_functional("battery-inf", "lda", inf))
    def abi():
        def inf(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            lda_pw_into(npoints, nspin, rho, e, vrho)
            e[0] = float("inf")
            return 0
        abi_register(b"battery-inf", inf)
        abi_forward(abi_create(si_json()), xc=b"battery-inf")


@case("kernel_missing_for_backward", SolidXCError, "battery-nokernel")
class _:
    def python():
        r = solidxc.scf(py_si(), register_functional("battery-nokernel", "lda", lda_pw), tol=1e-8)
        r.backward(0.0, r.density * r.dv)
    def abi():
        def ok(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            lda_pw_into(npoints, nspin, rho, e, vrho)
            return 0
        abi_register(b"battery-nokernel", ok)
        res = abi_forward(abi_create(si_json()), xc=b"battery-nokernel")
        nspin, _, _, fft = abi_dims(res)
        abi_backward(res, drho=np.linspace(0.5, 1.5, nspin * int(np.prod(fft))))


@case("kernel_returns_nan", CallbackError, "battery-kernel-nan")
class _:
    def python():
        def bad_kernel(rho, sigma, drho, dsigma):
            return np.full_like(drho, np.nan), None
        f = register_functional("battery-kernel-nan", "lda", lda_pw, bad_kernel)
        r = solidxc.scf(py_si(), f, tol=1e-8)
        r.backward(0.0, r.density * r.dv)
    def abi():
        def ok(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            lda_pw_into(npoints, nspin, rho, e, vrho)
            return 0

        def bad_kernel(user, npoints, nspin, rho, sigma, drho, dsigma, dvrho, dvsigma):
            np.ctypeslib.as_array(dvrho, shape=(int(npoints) * nspin,))[:] = np.nan
            return 0
        abi_register(b"battery-kernel-nan", ok, bad_kernel)
        res = abi_forward(abi_create(si_json()), xc=b"battery-kernel-nan")
        nspin, _, _, fft = abi_dims(res)
        abi_backward(res, drho=np.linspace(0.5, 1.5, nspin * int(np.prod(fft))))


@case("functional_unregistered_before_backward", SolidXCError, "battery-unregistered")
class _:
    def python():
        f = register_functional("battery-unregistered", "lda", lda_pw, lda_pw_kernel)
        r = solidxc.scf(py_si(), f, tol=1e-8)
        f.unregister()
        r.backward(0.0, r.density * r.dv)
    def abi():
        def ok(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            lda_pw_into(npoints, nspin, rho, e, vrho)
            return 0
        fid = abi_register(b"battery-unregistered", ok, lambda *a: 0)
        res = abi_forward(abi_create(si_json()), xc=b"battery-unregistered")
        assert lib().sxc_functional_unregister(fid) == 0
        nspin, _, _, fft = abi_dims(res)
        abi_backward(res, drho=np.linspace(0.5, 1.5, nspin * int(np.prod(fft))))


# ---- SCF and response loops ---------------------------------------------------------------------------

class Diverging:
    """LDA-PW plus a penalty s/2 (rho - <rho>)^2 whose strength s = 3^calls grows with every call:
    each SCF step sees a stiffer functional, and the density residual of aluminium grows from
    ~1.4 to ~5 electrons instead of falling."""

    def __init__(self):
        self.calls = 0

    def terms(self, rho):
        self.calls += 1
        s = 3.0 ** self.calls
        d = rho - rho.mean()
        return 0.5 * s * d ** 2, s * d

    def python(self, rho, sigma):
        e, v, _ = eval_xc("lda,pw", rho)
        de, dv = self.terms(rho)
        return e + de, v + dv

    def abi(self, user, npoints, nspin, rho, sigma, e, vrho, vsigma):
        lda_pw_into(npoints, nspin, rho, e, vrho)
        de, dv = self.terms(np.ctypeslib.as_array(rho, shape=(int(npoints),)).copy())
        np.ctypeslib.as_array(e, shape=(int(npoints),))[:] += de
        np.ctypeslib.as_array(vrho, shape=(int(npoints),))[:] += dv
        return 0


def diverged(call):
    try:
        call()
    except ConvergenceError as exc:
        history = exc.history if len(exc.history) else np.array(_lib.last_error_history())
        assert len(history) == 15 and history[-1] > 2 * history[0], history  # it diverged
        raise


@case("scf_diverging", ConvergenceError, "scf: not converged after 15 iterations (maxiter 15")
class _:
    def python():
        f = register_functional("battery-diverging", "lda", Diverging().python)
        diverged(lambda: solidxc.scf(solidxc.System(**al_kwargs()), f, maxiter=15))
    def abi():
        abi_register(b"battery-diverging", Diverging().abi)
        system = abi_create(json.dumps(al_spec()).encode())
        diverged(lambda: abi_forward(system, xc=b"battery-diverging", options=b'{"maxiter": 15}'))


@case("scf_time_limit", ConvergenceError, "time_limit: scf: stopped at iteration")
class _:
    def python():
        def slow(rho, sigma):
            time.sleep(0.05)
            return lda_pw(rho, sigma)
        solidxc.scf(py_si(), register_functional("battery-slow", "lda", slow), tol=1e-12, time_limit=0.2)
    def abi():
        def slow(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
            time.sleep(0.05)
            lda_pw_into(npoints, nspin, rho, e, vrho)
            return 0
        abi_register(b"battery-slow", slow)
        abi_forward(abi_create(si_json()), xc=b"battery-slow", options=b'{"tol": 1e-12, "time_limit": 0.2}')


@case("response_not_converged", ConvergenceError, "raise maxiter")
class _:
    def python():
        r = py_result()
        r.backward(0.0, r.density * r.dv, tol=1e-14, maxiter=1)
    def abi():
        res = abi_result()
        nspin, _, _, fft = abi_dims(res)
        abi_backward(res, drho=np.linspace(0.5, 1.5, nspin * int(np.prod(fft))), options=b'{"tol": 1e-14, "maxiter": 1}')


@case("response_time_limit", ConvergenceError, "time_limit: backward")
class _:
    def python():
        r = py_result()
        r.backward(0.0, r.density * r.dv, tol=1e-14, maxiter=100000, time_limit=1e-4)
    def abi():
        res = abi_result()
        nspin, _, _, fft = abi_dims(res)
        abi_backward(res, drho=np.linspace(0.5, 1.5, nspin * int(np.prod(fft))),
                     options=b'{"tol": 1e-14, "maxiter": 100000, "time_limit": 1e-4}')


@case("backward_non_finite_loss", InputError, "dL_dE")
class _:
    def python(): py_result().backward(float("inf"))
    def abi(): abi_backward(abi_result(), dL_dE=float("nan"))


@case("backward_nan_density_gradient", InputError, "dL_drho: value 5 is not finite")
class _:
    def python():
        r = py_result()
        g = np.zeros_like(r.density)
        g.flat[5] = np.nan
        r.backward(0.0, g)
    def abi():
        res = abi_result()
        nspin, _, _, fft = abi_dims(res)
        g = np.zeros(nspin * int(np.prod(fft)))
        g[5] = np.nan
        abi_backward(res, drho=g)


# ---- The child: one case through one path ----------------------------------------------------------

def run_case(name: str, path: str) -> str:
    error, field, python, abi = CASES[name]
    which = 0 if path == "python" else 1
    expected = error[which] if isinstance(error, tuple) else error
    field = field[which] if isinstance(field, tuple) else field
    try:
        (python if path == "python" else abi)()
    except SolidXCError as exc:
        message = str(exc)
        assert isinstance(exc, expected), f"{type(exc).__name__} ({message}); expected {expected.__name__}"
        assert field in message, f"the message does not name {field!r}: {message}"
        assert exc.status == type(exc).status, (exc.status, type(exc).status)
        return f"PASS {name} {path}: {type(exc).__name__}: {message[:200]}"
    raise AssertionError(f"{name} ({path}) raised nothing; expected {expected.__name__} naming {field!r}")


@pytest.mark.parametrize("path", ["python", "abi"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_battery(name, path):
    env = dict(os.environ)
    package_root = str(Path(solidxc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, str(HERE), env.get("PYTHONPATH", "")])
    try:
        proc = subprocess.run([sys.executable, __file__, name, path], capture_output=True, text=True, env=env,
                              timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} ({path}) hung: no answer within {CASE_TIMEOUT} s")
    if proc.returncode < 0:
        pytest.fail(f"{name} ({path}) crashed the interpreter with signal {-proc.returncode}\n{proc.stderr}")
    assert proc.returncode == 0, f"{name} ({path}) failed\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert f"PASS {name} {path}" in proc.stdout, proc.stdout


def test_the_battery_has_at_least_40_cases_each_with_both_paths():
    assert len(CASES) >= 40
    for name, (error, field, python, abi) in CASES.items():
        assert callable(python) and callable(abi) and field, name


if __name__ == "__main__":
    print(run_case(sys.argv[1], sys.argv[2]))

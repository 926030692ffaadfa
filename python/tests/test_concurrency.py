"""Concurrency (issue 8): independent calculations in several Python threads at once give bitwise the
serial results; the GIL is released while the core works; the functional registry survives
registration and removal from many threads; results are bitwise reproducible run to run at a fixed
thread count."""

from __future__ import annotations

import ctypes
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import solidxc
from solidxc import _lib
from solidxc.functional import LDA, eval_xc, kernel_xc, register_functional
from conftest import si_atoms, si_lattice

pytestmark = pytest.mark.fast

A_AL = 7.65339


def silicon(**kw):
    args = dict(ecut=6.0, kpts=(2, 2, 2))
    args.update(kw)
    return solidxc.System(si_lattice(), si_atoms(), **args)


def aluminium(**kw):
    lattice = [[0, A_AL / 2, A_AL / 2], [A_AL / 2, 0, A_AL / 2], [A_AL / 2, A_AL / 2, 0]]
    args = dict(ecut=6.0, kpts=(3, 3, 3), smearing="fermi-dirac")
    args.update(kw)
    return solidxc.System(lattice, [("Al", (0, 0, 0))], **args)


def python_lda(rho, sigma):
    return eval_xc("lda,pw", rho)


def python_lda_kernel(rho, sigma, drho, dsigma):
    return kernel_xc("lda,pw", rho, None, drho)


#: A Python (callback) functional: the threads then contend for the GIL inside the core's callbacks.
PYTHON_LDA = register_functional("test-concurrency-lda", LDA, python_lda, python_lda_kernel)

#: (system factory, xc): an insulator, a metal, a spin-polarised cell, a GGA, a Python callback.
JOBS = [
    (lambda: silicon(), "lda,pw"),
    (lambda: aluminium(), "lda,pw"),
    (lambda: silicon(magmoms=[0.5, 0.5], smearing="gaussian"), "lda,pw"),
    (lambda: silicon(pseudo="gth-pbe"), "pbe"),
    (lambda: silicon(), PYTHON_LDA),
]


def run(job, threads: int = 2):
    """Energy, density, eigenvalues and the density-loss adjoints of one job."""
    make, xc = job
    system = make()
    result = solidxc.scf(system, xc, tol=1e-9, threads=threads)
    adjoints = result.backward(0.0, result.density * result.dv)
    return (result.energy, result.density.copy(), result.eigenvalues.copy(), adjoints.adj_vrho.copy(),
            result.iterations)


def same_bits(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def test_independent_systems_in_threads_match_serial_runs_bitwise():
    serial = [run(job) for job in JOBS]
    with ThreadPoolExecutor(max_workers=len(JOBS)) as pool:
        concurrent = list(pool.map(run, JOBS))
    for job, s, c in zip(JOBS, serial, concurrent):
        assert same_bits(s, c), f"{job[1]}: threaded energy {c[0]!r} vs serial {s[0]!r}"
    # and the same jobs twice at once (the same system and functional from two threads)
    with ThreadPoolExecutor(max_workers=4) as pool:
        twice = list(pool.map(run, [JOBS[1], JOBS[1], JOBS[4], JOBS[4]]))
    assert same_bits(twice[0], serial[1]) and same_bits(twice[1], serial[1])
    assert same_bits(twice[2], serial[4]) and same_bits(twice[3], serial[4])


@pytest.mark.parametrize("threads", [1, 2])
def test_results_are_bitwise_reproducible_run_to_run_at_a_fixed_thread_count(threads):
    for job in JOBS[:3]:
        first, second, third = (run(job, threads) for _ in range(3))
        assert same_bits(first, second) and same_bits(first, third), job[1]


def count_during_call(call) -> tuple[int, float]:
    """Runs `call` in a thread while this thread counts in pure Python; returns the count reached
    between the call's start and end (as the calling thread saw them) and the call's duration."""
    marks = {}
    started = threading.Event()

    def worker():
        started.set()
        marks["start"] = time.perf_counter()
        call()
        marks["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    ticks = []
    thread.start()
    started.wait()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    inside = sum(1 for t in ticks if marks["start"] < t < marks["end"])
    return inside, marks["end"] - marks["start"]


def test_the_gil_is_released_while_the_core_runs_an_scf():
    system = aluminium(ecut=8.0, kpts=(4, 4, 4))
    options = b'{"tol": 1e-10, "threads": 1}'

    def scf_through(lib):
        handle = ctypes.c_void_p()
        assert lib.sxc_scf_forward(system.handle, b"lda,pw", options, ctypes.byref(handle)) == 0
        assert lib.sxc_result_free(handle) == 0

    # ctypes.CDLL (what solidxc uses) releases the GIL for each foreign call ...
    released, seconds = count_during_call(lambda: scf_through(_lib.load()))
    # ... ctypes.PyDLL keeps it: the control that shows this measurement can tell the two apart.
    held_lib = ctypes.PyDLL(_lib.library_path())
    held_lib.sxc_scf_forward.argtypes = _lib.load().sxc_scf_forward.argtypes
    held_lib.sxc_result_free.argtypes = [ctypes.c_void_p]
    held, held_seconds = count_during_call(lambda: scf_through(held_lib))
    assert seconds > 0.2, f"the SCF took {seconds:.3f} s, too short to measure"
    assert released > 10_000, f"the Python thread ran {released} loop iterations during a {seconds:.2f} s SCF"
    # With the GIL held the counter only moves in the switch intervals (5 ms) around the call:
    # measured 1.6e6 iterations/s released against 8e4/s held.
    assert held / held_seconds < 0.2 * released / seconds, (held, held_seconds, released, seconds)
    # and through the public API
    count, seconds = count_during_call(lambda: solidxc.scf(system, "lda,pw", tol=1e-10, threads=1))
    assert count > 10_000, f"{count} iterations during a {seconds:.2f} s solidxc.scf"


def test_functional_registry_register_and_unregister_from_many_threads():
    rho = np.linspace(0.01, 1.0, 64)
    e_ref, v_ref, _ = eval_xc("lda,pw", rho)
    errors = []
    ids = []
    ids_lock = threading.Lock()

    def churn(worker: int):
        try:
            for i in range(40):
                f = register_functional(f"test-churn-{worker}-{i}", "lda", python_lda, python_lda_kernel)
                with ids_lock:
                    ids.append(f.id)
                e, v, _ = eval_xc(f, rho)  # through the core and back into Python
                if not (np.array_equal(e, e_ref) and np.array_equal(v, v_ref)):
                    errors.append(f"worker {worker}: wrong values from {f.name}")
                e2, _, _ = eval_xc(f.name, rho)  # and by name
                if not np.array_equal(e2, e_ref):
                    errors.append(f"worker {worker}: wrong values by name from {f.name}")
                f.unregister()
                with pytest.raises(solidxc.InputError):
                    f.unregister()
        except Exception as exc:  # noqa: BLE001 - reported below with the worker's number
            errors.append(f"worker {worker}: {type(exc).__name__}: {exc}")

    def raw_churn(worker: int):
        lib = _lib.load()
        callback = _lib.EVAL_CALLBACK(lambda *args: 0)
        try:
            for i in range(100):
                fid = ctypes.c_int32()
                status = lib.sxc_functional_register(f"test-raw-{worker}-{i}".encode(), 1, callback,
                                                     _lib.KERNEL_CALLBACK(), None, ctypes.byref(fid))
                if status != 0:
                    errors.append(f"raw {worker}: register {status}: {_lib.last_error()}")
                    continue
                with ids_lock:
                    ids.append(fid.value)
                if lib.sxc_functional_unregister(fid.value) != 0:
                    errors.append(f"raw {worker}: unregister: {_lib.last_error()}")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"raw {worker}: {type(exc).__name__}: {exc}")

    # meanwhile SCFs with a registered Python functional keep running
    def scf_while_churning():
        try:
            return run(JOBS[4], threads=1)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"scf: {type(exc).__name__}: {exc}")

    reference = run(JOBS[4], threads=1)
    threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=raw_churn, args=(w,)) for w in range(4)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        scfs = [pool.submit(scf_while_churning) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [s.result() for s in scfs]
    assert not errors, errors[:5]
    assert len(ids) == 4 * 40 + 4 * 100 and len(set(ids)) == len(ids), "ids were reused"
    for r in results:
        assert same_bits(r, reference)
    # every churned name is gone; the long-lived registration still works
    for name in ("test-churn-0-0", "test-churn-3-39", "test-raw-2-99"):
        with pytest.raises(solidxc.InputError, match="xc"):
            eval_xc(name, rho)
    assert np.array_equal(eval_xc(PYTHON_LDA, rho)[0], e_ref)

"""Bad input to the backward pass ([grad] issue): each gets a clear error naming the handle,
the field or the functional, never a crash or a NaN."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

import solidxc
from solidxc import _lib
from solidxc.functional import LDA, register_functional, eval_xc
from conftest import si_atoms, si_lattice


@pytest.fixture(scope="module")
def system():
    return solidxc.System(si_lattice(), si_atoms(), ecut=6.0, kpts=(2, 2, 2))


@pytest.fixture(scope="module")
def result(system):
    return solidxc.scf(system, "lda,pw", tol=1e-10)


def test_backward_can_be_called_again_for_another_loss(result):
    energy = result.backward(1.0)
    density = result.backward(0.0, result.density * result.dv)
    assert energy.iterations == 0 and energy.residual == 0
    assert density.iterations > 0 and density.residual < 1e-10
    assert np.all(np.isfinite(density.adj_vrho))


def test_a_loss_on_the_electron_count_has_no_response(result):
    """dL/drho constant: L depends on the electron count only, which the SCF fixes, so nothing
    flows back (no solve, zero adjoints; a solve would chase rounding noise)."""
    count = result.backward(0.0, np.ones_like(result.density) * result.dv)
    assert count.iterations == 0 and count.residual == 0
    assert np.all(count.adj_vrho == 0)


def test_backward_after_the_result_was_freed(system):
    r = solidxc.scf(system, "lda,pw", tol=1e-8)
    r.close()
    with pytest.raises(solidxc.HandleError, match="result"):
        r.backward(1.0)


@pytest.mark.parametrize("kwargs, field", [
    (dict(dL_drho=np.zeros((2, 3))), "dL_drho"),
    (dict(dL_deig=np.zeros(7)), "dL_deig"),
])
def test_gradients_of_the_wrong_shape(result, kwargs, field):
    with pytest.raises(solidxc.InputError, match=field):
        result.backward(0.0, **kwargs)


def test_non_finite_loss_gradients(result):
    bad = np.zeros_like(result.density)
    bad[0, 1, 2, 3] = np.nan
    with pytest.raises(solidxc.InputError, match="dL_drho"):
        result.backward(0.0, bad)
    with pytest.raises(solidxc.InputError, match="dL_dE"):
        result.backward(float("inf"))


def test_eigenvalue_loss_that_splits_a_degenerate_level(result):
    d = np.zeros_like(result.eigenvalues)
    k = int(np.argmin(np.linalg.norm(result.kpoints, axis=1)))
    d[0, k, 3] = 1.0  # Gamma: bands 1-3 are threefold degenerate
    with pytest.raises(solidxc.InputError, match="degenerate"):
        result.backward(0.0, dL_deig=d)


def test_response_non_convergence_is_reported(result):
    with pytest.raises(solidxc.ConvergenceError, match="GMRES") as info:
        result.backward(0.0, result.density * result.dv, tol=1e-14, maxiter=1)
    assert len(info.value.history) >= 1


def test_functional_unregistered_before_backward_names_it(system):
    def lda(rho, sigma):
        return eval_xc("lda,pw", rho)

    def kernel(rho, sigma, drho, dsigma):
        from solidxc.functional import kernel_xc
        return kernel_xc("lda,pw", rho, None, drho)

    f = register_functional("test-unregistered-lda", LDA, lda, kernel)
    r = solidxc.scf(system, f, tol=1e-9)
    f.unregister()
    with pytest.raises(solidxc.SolidXCError, match="test-unregistered-lda"):
        r.backward(0.0, r.density * r.dv)


def test_raw_abi_counts_and_null_pointers(result):
    lib = _lib.load()
    n = int(np.prod(result.fft_size))
    out = np.empty(n)
    vr = np.empty(n)
    ptr = ctypes.POINTER(ctypes.c_double)
    res, it = ctypes.c_double(), ctypes.c_int()
    drho = np.zeros(5)
    status = lib.sxc_scf_backward(result.handle, 0.0, drho.ctypes.data_as(ptr), 5, None, 0, None,
                                  out.ctypes.data_as(ptr), n, vr.ctypes.data_as(ptr), n, None, 0,
                                  ctypes.byref(res), ctypes.byref(it))
    assert status == solidxc.InputError.status
    assert "dL_drho" in lib.sxc_last_error().decode()
    status = lib.sxc_scf_backward(result.handle, 0.0, None, 3, None, 0, None, out.ctypes.data_as(ptr), n,
                                  vr.ctypes.data_as(ptr), n, None, 0, ctypes.byref(res), ctypes.byref(it))
    assert status == solidxc.InputError.status and "dL_drho" in lib.sxc_last_error().decode()
    status = lib.sxc_scf_backward(result.handle, 1.0, None, 0, None, 0, None, out.ctypes.data_as(ptr), n - 1,
                                  vr.ctypes.data_as(ptr), n, None, 0, ctypes.byref(res), ctypes.byref(it))
    assert status == solidxc.BufferSizeError.status and "adj_e" in lib.sxc_last_error().decode()
    status = lib.sxc_scf_backward(None, 1.0, None, 0, None, 0, None, out.ctypes.data_as(ptr), n,
                                  vr.ctypes.data_as(ptr), n, None, 0, ctypes.byref(res), ctypes.byref(it))
    assert status == solidxc.HandleError.status

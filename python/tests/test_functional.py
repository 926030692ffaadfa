"""User (Python, neural) functionals through the C ABI: registration, the SCF with a callback,
kernels, DeepChem's NNLDA / NNPBE / HybridXC, failures inside callbacks, and the exact
parameter derivatives of the built-ins.

References are independent of the code under test: a numpy Slater + PW92 written out by hand
(checked point by point against the built-in "lda,pw", which the Swift tests check against
libxc), central finite differences, DeepChem's formulas re-derived from gradient vectors, and
the SCF's own variational property.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import solidxc
from solidxc import CallbackError, InputError, functional as F
from conftest import si_atoms, si_lattice

pytestmark = pytest.mark.fast

# ---- An independent LDA: Slater exchange + PW92 correlation, unpolarised, by hand ----------

PW92 = dict(a=0.031091, alpha1=0.21370, beta=(7.5957, 3.5876, 1.6382, 0.49294))  # LDA_C_PW, eps_c(rs, 0)


def slater_pw92(rho, sigma=None):
    """e = n (eps_x + eps_c) and v = d e / d n, with PW92's G(rs) and its derivative worked out on
    paper. Points below libxc's 1e-15 threshold give 0, as the built-in does."""
    n = np.asarray(rho, dtype=float)
    live = n >= 1e-15
    m = np.where(live, n, 1.0)
    cx = 0.75 * (3 / math.pi) ** (1 / 3)
    ex = -cx * m ** (4 / 3)
    vx = 4 / 3 * ex / m
    a, alpha1, (b1, b2, b3, b4) = PW92["a"], PW92["alpha1"], PW92["beta"]
    rs = (3 / (4 * math.pi * m)) ** (1 / 3)
    sq = np.sqrt(rs)
    q = b1 * sq + b2 * rs + b3 * rs * sq + b4 * rs * rs
    dq = b1 / (2 * sq) + b2 + 1.5 * b3 * sq + 2 * b4 * rs
    x = 1 / (2 * a * q)
    g = -2 * a * (1 + alpha1 * rs) * np.log(1 + x)
    dg = -2 * a * alpha1 * np.log(1 + x) + (1 + alpha1 * rs) * dq / (q * q * (1 + x))
    e = np.where(live, ex + m * g, 0.0)
    v = np.where(live, vx + g - rs / 3 * dg, 0.0)
    return e, v


# ---- A toy GGA with a hand-written kernel, for the kernel plumbing (any spin) ---------------

def toy_gga(rho, sigma):
    """e = sum_s c rho_s^(4/3) + d sum_ab w_ab sigma_ab / (1 + n), smooth in every input."""
    c, d = -0.7, 0.05
    rho2 = np.atleast_2d(rho)
    sig2 = np.atleast_2d(sigma)
    n = rho2.sum(axis=0)
    w = np.array([1.0]) if rho2.shape[0] == 1 else np.array([1.0, 2.0, 1.0])
    s = (w[:, None] * sig2).sum(axis=0)
    e = (c * rho2 ** (4 / 3)).sum(axis=0) + d * s / (1 + n)
    vrho = 4 / 3 * c * rho2 ** (1 / 3) - d * s / (1 + n) ** 2
    vsigma = d * w[:, None] / (1 + n) * np.ones_like(sig2)
    return e, vrho.reshape(np.shape(rho)), vsigma.reshape(np.shape(sigma))


def toy_gga_kernel(rho, sigma, drho, dsigma):
    c, d = -0.7, 0.05
    rho2, sig2 = np.atleast_2d(rho), np.atleast_2d(sigma)
    drho2, dsig2 = np.atleast_2d(drho), np.atleast_2d(dsigma)
    n, dn = rho2.sum(axis=0), drho2.sum(axis=0)
    w = np.array([1.0]) if rho2.shape[0] == 1 else np.array([1.0, 2.0, 1.0])
    s, ds = (w[:, None] * sig2).sum(axis=0), (w[:, None] * dsig2).sum(axis=0)
    dvrho = 4 / 9 * c * rho2 ** (-2 / 3) * drho2 + 2 * d * s / (1 + n) ** 3 * dn - d * ds / (1 + n) ** 2
    dvsigma = -d * w[:, None] / (1 + n) ** 2 * dn * np.ones_like(sig2)
    return dvrho.reshape(np.shape(rho)), dvsigma.reshape(np.shape(sigma))


# ---- Points ---------------------------------------------------------------------------------

def gga_points(nspin: int, seed: int = 3):
    """Smooth points: densities 1e-3 to 5, polarisations up to 0.7, reduced gradients 0.1 to 2, and
    up/down gradients at random angles, in the core's layouts."""
    rng = np.random.default_rng(seed)
    n = np.geomspace(1e-3, 5.0, 12)
    zeta = rng.uniform(-0.7, 0.7, n.size) if nspin == 2 else np.zeros(n.size)
    up, down = 0.5 * n * (1 + zeta), 0.5 * n * (1 - zeta)
    gu = rng.normal(size=(3, n.size)) * up ** (4 / 3) * rng.uniform(0.1, 2.0, n.size) * 6
    gd = rng.normal(size=(3, n.size)) * down ** (4 / 3) * rng.uniform(0.1, 2.0, n.size) * 6
    if nspin == 1:
        g = gu + gd
        return n, (g * g).sum(axis=0), (gu, gd)
    return np.array([up, down]), np.array([(gu * gu).sum(0), (gu * gd).sum(0), (gd * gd).sum(0)]), (gu, gd)


def central_difference(f, x, dx, h):
    """(f(x + h dx) - f(x - h dx)) / 2h for a function returning a tuple of arrays."""
    plus, minus = f(x + h * dx), f(x - h * dx)
    return [None if p is None else (p - m) / (2 * h) for p, m in zip(plus, minus)]


def assert_close(actual, expected, rtol, what):
    scale = np.max(np.abs(expected))
    assert scale > 0, f"{what}: the reference is zero"
    err = np.max(np.abs(np.asarray(actual) - expected)) / scale
    assert err < rtol, f"{what}: max error {err:.2e} relative to {scale:.2e} (tolerance {rtol})"


# ---- Fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def si():
    """Silicon, ecut 10 Ha, 2x2x2 k-points (GTH-Pade)."""
    return solidxc.System(si_lattice(), si_atoms(), ecut=10.0, kpts=(2, 2, 2))


@pytest.fixture(scope="module")
def si_lda(si):
    return solidxc.scf(si, xc="lda,pw", tol=1e-11)


@pytest.fixture(scope="module")
def si_pbe(si):
    return solidxc.scf(si, xc="pbe", tol=1e-11)


def lda_eval(rho, sigma):
    e, v = slater_pw92(rho)
    return e, v


# ---- (a) The SCF through a numpy callback ---------------------------------------------------

def test_hand_written_slater_pw92_matches_builtin_lda_pw_point_by_point():
    n = np.geomspace(1e-8, 1e3, 40)
    e_ref, v_ref, _ = F.eval_xc("lda,pw", n)
    e, v = slater_pw92(n)
    np.testing.assert_allclose(e, e_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(v, v_ref, rtol=1e-13, atol=0)


def test_numpy_slater_pw92_callback_gives_the_builtin_lda_pw_scf_energy_si_ecut10_k222(si, si_lda):
    with F.register_functional("numpy-slater-pw92", "lda", lda_eval) as xc:
        assert xc.family == F.LDA and xc.id >= F.FIRST_USER_ID
        by_object = solidxc.scf(si, xc=xc, tol=1e-11)
        by_name = solidxc.scf(si, xc="NUMPY-slater-pw92", tol=1e-11)
    assert by_object.converged and by_object.xc == "numpy-slater-pw92"
    assert abs(by_object.energy - si_lda.energy) < 1e-10, (by_object.energy, si_lda.energy)
    assert abs(by_name.energy - si_lda.energy) < 1e-10
    np.testing.assert_allclose(by_object.density, si_lda.density, rtol=0, atol=1e-9)


def test_callback_arrays_arrive_in_the_core_layouts_for_both_spins():
    seen = {}

    def record(rho, sigma):
        seen["shapes"] = (rho.shape, sigma.shape)
        seen["writeable"] = rho.flags.writeable
        return toy_gga(rho, sigma)

    with F.register_functional("layout-probe", F.GGA, record) as xc:
        for nspin in (1, 2):
            rho, sigma, _ = gga_points(nspin)
            mine = xc.eval(rho, sigma)
            expected = toy_gga(rho, sigma)
            assert seen["shapes"] == (rho.shape, sigma.shape)
            assert seen["writeable"] is False
            for a, b in zip(mine, expected):
                np.testing.assert_array_equal(a, b)


# ---- (b) Kernels ----------------------------------------------------------------------------

@pytest.mark.parametrize("nspin", [1, 2])
def test_kernel_callback_matches_finite_differences_of_the_eval_callback(nspin):
    rho, sigma, _ = gga_points(nspin)
    rng = np.random.default_rng(11)
    drho, dsigma = rng.normal(size=rho.shape) * rho, rng.normal(size=sigma.shape) * sigma
    with F.register_functional("toy-gga", F.GGA, toy_gga, toy_gga_kernel) as xc:
        dvrho, dvsigma = xc.kernel(rho, sigma, drho, dsigma)
        h = 1e-5
        fd_vrho = (xc.eval(rho + h * drho, sigma + h * dsigma)[1] - xc.eval(rho - h * drho, sigma - h * dsigma)[1]) / (2 * h)
        fd_vsigma = (xc.eval(rho + h * drho, sigma + h * dsigma)[2] - xc.eval(rho - h * drho, sigma - h * dsigma)[2]) / (2 * h)
    assert_close(dvrho, fd_vrho, 1e-7, "dvrho")
    assert_close(dvsigma, fd_vsigma, 1e-7, "dvsigma")


def test_missing_kernel_is_a_clear_callback_error():
    with F.register_functional("no-kernel", "lda", lda_eval) as xc:
        with pytest.raises(CallbackError, match=r"functional 'no-kernel' \(id \d+\) has no kernel callback"):
            xc.kernel(np.array([0.1, 0.2]), drho=np.array([1.0, 1.0]))


# ---- (c) DeepChem's neural functionals ------------------------------------------------------

def deepchem_net(torch, ninp, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(ninp, 6), torch.nn.Softplus(), torch.nn.Linear(6, 1, bias=False)).double()


@pytest.mark.parametrize("nspin", [1, 2])
def test_nnlda_is_deepchems_nn_of_n_and_xi_times_n(nspin):
    torch = pytest.importorskip("torch")
    net = deepchem_net(torch, 2)
    rho, _, _ = gga_points(nspin)
    e = F.NNLDA(net)(torch.tensor(rho)).detach().numpy()
    # DeepChem nnxc.py: n = n_up + n_down, xi = (n_up - n_down) / (n + 1e-18), res = nn(cat(n, xi)) * n
    n = rho if nspin == 1 else rho[0] + rho[1]
    xi = np.zeros_like(n) if nspin == 1 else (rho[0] - rho[1]) / (n + 1e-18)
    expected = net(torch.tensor(np.stack([n, xi], axis=-1))).detach().numpy()[:, 0] * n
    assert e.shape == (n.size,)
    np.testing.assert_allclose(e, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("nspin", [1, 2])
def test_nnpbe_is_deepchems_nn_of_n_xi_s_from_gradient_vectors(nspin):
    torch = pytest.importorskip("torch")
    net = deepchem_net(torch, 3)
    rho, sigma, (gu, gd) = gga_points(nspin)
    e = F.NNPBE(net)(torch.tensor(rho), torch.tensor(sigma)).detach().numpy()
    # DeepChem nnxc.py NNPBE, from the gradient vectors: s = safenorm(grad n) / a * safepow(n, -4/3)
    # with safenorm(g) = sqrt(sum_i (g_i^2 + 1e-30)) and safepow(n, p) = sqrt(n^2 + 1e-24)^p.
    n = rho if nspin == 1 else rho[0] + rho[1]
    xi = np.zeros_like(n) if nspin == 1 else (rho[0] - rho[1]) / (n + 1e-18)
    g = gu + gd
    norm = np.sqrt((g * g + 1e-15 ** 2).sum(axis=0))
    s = norm / (2 * (3 * math.pi ** 2) ** (1 / 3)) * np.sqrt(n * n + 1e-24) ** (-4 / 3)
    expected = net(torch.tensor(np.stack([n, xi, s], axis=-1))).detach().numpy()[:, 0] * n
    np.testing.assert_allclose(e, expected, rtol=1e-12, atol=0)


def block_directions(x):
    """One perturbation per spin (or sigma) block: that block of x, the others zero."""
    if x.ndim == 1:
        return [x.copy()]
    out = []
    for k in range(x.shape[0]):
        d = np.zeros_like(x)
        d[k] = x[k]
        out.append(d)
    return out


@pytest.mark.parametrize("kind, nspin", [("NNLDA", 1), ("NNLDA", 2), ("NNPBE", 1), ("NNPBE", 2),
                                         ("NNEnhancement", 1), ("NNEnhancement", 2), ("uniform_gas", 1), ("uniform_gas", 2)])
def test_nn_potentials_are_finite_differences_of_the_energy(kind, nspin):
    torch = pytest.importorskip("torch")
    module = (F.NNLDA(2, 8, ndepths=2) if kind == "NNLDA" else F.NNEnhancement(3, 8, ndepths=2, uniform_gas=True)
              if kind == "uniform_gas" else getattr(F, kind)(3, 8, ndepths=2))
    gga = kind != "NNLDA"
    rho, sigma, _ = gga_points(nspin)
    e, vrho, vsigma = module.xc_outputs(rho, sigma)
    assert e.dtype == torch.float64 and e.shape == (rho.shape[-1],) and vrho.shape == rho.shape
    assert (vsigma is not None and vsigma.shape == sigma.shape) if gga else vsigma is None

    def energy(r, s):
        return module(torch.tensor(r), torch.tensor(s) if gga else None).detach().numpy()

    h = 1e-6
    # e is local, so one perturbation of every point at once gives each point's own derivative.
    for d in block_directions(rho):
        fd = (energy(rho + h * d, sigma) - energy(rho - h * d, sigma)) / (2 * h)
        assert_close((vrho.detach().numpy() * d).reshape(-1, rho.shape[-1]).sum(0), fd, 1e-7, f"{kind} vrho")
    for d in block_directions(sigma) if gga else []:
        fd = (energy(rho, sigma + h * d) - energy(rho, sigma - h * d)) / (2 * h)
        assert_close((vsigma.detach().numpy() * d).reshape(-1, sigma.shape[-1]).sum(0), fd, 1e-6, f"{kind} vsigma")


def test_nn_functionals_stay_finite_at_vanishing_density_and_gradient():
    torch = pytest.importorskip("torch")
    rho = np.array([[0.0, 1e-30, 1e-12, 0.3], [0.0, 0.0, 1e-14, 0.1]])
    sigma = np.array([[0.0, 0.0, 1e-30, 0.02], [0.0, 0.0, 0.0, -0.001], [0.0, 0.0, 0.0, 0.01]])
    for module in (F.NNLDA(2, 4), F.NNPBE(3, 4), F.NNEnhancement(3, 4)):
        for r, s in ((rho, sigma), (rho.sum(0), sigma[0] + 2 * sigma[1] + sigma[2])):
            for out in module.xc_outputs(r, s):
                if out is not None:
                    assert torch.isfinite(out).all(), (type(module).__name__, out)


@pytest.mark.parametrize("nspin", [1, 2])
@pytest.mark.parametrize("uniform_gas", [False, True])
def test_nn_enhancement_is_uniform_gas_exchange_times_the_network_of_bounded_features(nspin, uniform_gas):
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    net = deepchem_net(torch, 3)
    rho, sigma, _ = gga_points(nspin)
    module = F.NNEnhancement(net, uniform_gas=uniform_gas)
    e = module(torch.tensor(rho), torch.tensor(sigma)).detach().numpy()
    # Written out independently: n, zeta, p = s^2 = |grad n|^2 / (4 (3 pi^2)^(2/3) n^(8/3)).
    n = rho if nspin == 1 else rho[0] + rho[1]
    zeta = np.zeros_like(n) if nspin == 1 else (rho[0] - rho[1]) / n
    grad2 = sigma if nspin == 1 else sigma[0] + 2 * sigma[1] + sigma[2]
    p = grad2 / (4 * (3 * np.pi ** 2) ** (2 / 3) * n ** (8 / 3))
    features = np.stack([n ** (1 / 3) / (1 + n ** (1 / 3)), zeta ** 2, p / (1 + p)], axis=-1)
    expected = -0.75 * (3 / np.pi) ** (1 / 3) * n ** (4 / 3) * net(torch.tensor(features)).detach().numpy()[:, 0]
    if uniform_gas:
        expected = expected * p / (1 + p)
    assert_close(e, expected, 1e-12, "NNEnhancement e")
    if uniform_gas:  # no gradient, no correction: e, vrho and vsigma of a uniform density are 0
        flat = np.zeros_like(sigma)
        for out in module.xc_outputs(rho, flat):
            assert float(out.detach().abs().max()) == 0.0


def test_nn_enhancement_vanishes_in_vacuum_where_nnpbe_does_not():
    """An exponential tail n = exp(-2 r) has |grad n| = 2 n. NNPBE's s = |grad n| / n^(4/3) grows
    (until DeepChem's safepow eps caps n^(-4/3) near n ~ 1e-12), and with it the network's output and
    the potential: tens of Ha in graphene's vacuum, where its SCF diverged. NNEnhancement's energy
    density and potentials fall with n."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    n = np.logspace(-2, -30, 15)
    sigma = (2 * n) ** 2
    e, vrho, vsigma = (x.detach().numpy() for x in F.NNEnhancement(3, 6).xc_outputs(n, sigma))
    assert np.all(np.abs(e[1:]) < np.abs(e[:-1])) and abs(e[-1]) < 1e-38
    assert np.all(np.abs(vrho[1:]) < np.abs(vrho[:-1])) and abs(vrho[-1]) < 1e-8
    assert np.all(np.abs(vsigma[1:] * sigma[1:]) < np.abs(vsigma[:-1] * sigma[:-1]))
    _, vrho_pbe, _ = (x.detach().numpy() for x in F.NNPBE(3, 6).xc_outputs(n, sigma))
    assert np.abs(vrho_pbe).max() > 100 * abs(vrho_pbe[0])  # the contrast that motivates NNEnhancement


@pytest.mark.parametrize("base", ["lda,pw", "pbe"])
def test_hybrid_with_a0_b1_reproduces_the_base_scf_energy(si, si_lda, si_pbe, base):
    torch = pytest.importorskip("torch")
    hybrid = F.HybridXC(base, deepchem_net(torch, 2 if base == "lda,pw" else 3), aweight0=0.0, bweight0=1.0)
    assert hybrid.family == (F.LDA if base == "lda,pw" else F.GGA)
    result = solidxc.scf(si, xc=hybrid, tol=1e-11)
    reference = si_lda if base == "lda,pw" else si_pbe
    assert abs(result.energy - reference.energy) < 1e-10, (result.energy, reference.energy)
    hybrid.registered.unregister()


def test_hybrid_outputs_are_differentiable_in_a_b_and_the_network():
    torch = pytest.importorskip("torch")
    hybrid = F.HybridXC("gga_x_pbe + gga_c_pbe", deepchem_net(torch, 3), aweight0=0.3, bweight0=0.8)
    rho, sigma, _ = gga_points(2)
    e, vrho, vsigma = hybrid.xc_outputs(rho, sigma)
    w_rho, w_sigma = torch.tensor(np.random.default_rng(5).normal(size=rho.shape)), torch.ones(sigma.shape, dtype=torch.float64)
    loss = e.sum() + (vrho * w_rho).sum() + (vsigma * w_sigma).sum()
    grads = torch.autograd.grad(loss, [hybrid.aweight, hybrid.bweight, *hybrid.nnxc.parameters()])
    # d loss / d b is the base's part of the loss, from the core directly.
    e_b, vrho_b, vsigma_b = F.eval_xc("pbe", rho, sigma)
    expected_b = e_b.sum() + (vrho_b * w_rho.numpy()).sum() + vsigma_b.sum()
    assert grads[1].item() == pytest.approx(expected_b, rel=1e-12)
    nn_e, nn_vrho, nn_vsigma = hybrid.nnxc.xc_outputs(rho, sigma)
    expected_a = (nn_e.sum() + (nn_vrho * w_rho).sum() + nn_vsigma.sum()).item()
    assert grads[0].item() == pytest.approx(expected_a, rel=1e-12)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads[2:])


@pytest.mark.parametrize("kind, nspin", [("NNPBE", 1), ("NNPBE", 2), ("NNLDA", 2), ("HybridPBE", 1), ("HybridPBE", 2),
                                         ("NNEnhancement", 1), ("NNEnhancement", 2)])
def test_registered_torch_kernels_match_finite_differences_through_the_core(kind, nspin):
    torch = pytest.importorskip("torch")
    module = {"NNPBE": lambda: F.NNPBE(3, 6), "NNLDA": lambda: F.NNLDA(2, 6),
              "NNEnhancement": lambda: F.NNEnhancement(3, 6),
              "HybridPBE": lambda: F.HybridXC("pbe", deepchem_net(torch, 3), aweight0=0.5, bweight0=0.7)}[kind]()
    rho, sigma, _ = gga_points(nspin)
    rng = np.random.default_rng(2)
    drho, dsigma = rng.normal(size=rho.shape) * rho, rng.normal(size=sigma.shape) * sigma
    gga = module.family == F.GGA
    with module.register() as xc:
        dvrho, dvsigma = F.kernel_xc(xc, rho, sigma if gga else None, drho, dsigma if gga else None)
        h = 1e-5
        plus = F.eval_xc(xc, rho + h * drho, sigma + h * dsigma if gga else None)
        minus = F.eval_xc(xc, rho - h * drho, sigma - h * dsigma if gga else None)
    assert_close(dvrho, (plus[1] - minus[1]) / (2 * h), 1e-6, f"{kind} dvrho")
    if gga:
        assert_close(dvsigma, (plus[2] - minus[2]) / (2 * h), 1e-6, f"{kind} dvsigma")


def test_hybrid_rejects_a_base_the_registry_does_not_know():
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match="unknown functional 'lda_q'.*lda,pw"):
        F.HybridXC("lda_q", deepchem_net(torch, 2))


def test_hybrid_accepts_deepchems_exchange_only_bases():
    """DeepChem's tutorials use HybridXC("lda_x", ...) and "gga_x_pbe": exchange-only built-ins
    (checked against libxc in XCTests)."""
    torch = pytest.importorskip("torch")
    assert F.HybridXC("lda_x", deepchem_net(torch, 2)).family == F.LDA
    assert F.HybridXC("gga_x_pbe", deepchem_net(torch, 3)).family == F.GGA
    rho = np.array([0.1, 0.5])
    e_x = F.eval_xc("lda_x", rho)[0]
    assert np.allclose(e_x, -0.75 * (3 / np.pi) ** (1 / 3) * rho ** (4 / 3), rtol=1e-14)


# ---- (d) Failures inside callbacks ----------------------------------------------------------

class Boom(RuntimeError):
    pass


def test_exception_in_a_callback_is_reraised_as_callback_error_from_the_original(si, si_lda):
    calls = []

    def exploding(rho, sigma):
        calls.append(1)
        if len(calls) == 2:
            raise Boom("network diverged")
        return lda_eval(rho, sigma)

    with F.register_functional("exploding", "lda", exploding) as xc:
        with pytest.raises(CallbackError) as info:
            solidxc.scf(si, xc=xc)
        # by name too
        calls.clear()
        with pytest.raises(CallbackError) as by_name:
            solidxc.scf(si, xc="exploding")
    for caught in (info.value, by_name.value):
        assert isinstance(caught.__cause__, Boom) and str(caught.__cause__) == "network diverged"
        assert "'exploding'" in str(caught) and "Boom: network diverged" in str(caught)
    # The process and the library carry on.
    assert solidxc.scf(si, xc="lda,pw", tol=1e-11).energy == pytest.approx(si_lda.energy, abs=1e-10)


def test_wrong_output_shape_is_a_callback_error_saying_which_output():
    with F.register_functional("bad-shape", "lda", lambda rho, sigma: (rho[:-1], rho)) as xc:
        with pytest.raises(CallbackError, match=r"returned e of shape \(2,\); expected \(3,\)") as info:
            xc.eval(np.array([0.1, 0.2, 0.3]))
    assert isinstance(info.value.__cause__, ValueError)


def test_keyboard_interrupt_in_a_callback_is_reraised_as_itself():
    def interrupted(rho, sigma):
        raise KeyboardInterrupt

    with F.register_functional("interrupted", "lda", interrupted) as xc:
        with pytest.raises(KeyboardInterrupt):
            xc.eval(np.array([0.1]))


def test_nan_from_a_callback_is_an_error_naming_functional_output_and_point(si):
    def nan_at_7(rho, sigma):
        e, v = lda_eval(rho, sigma)
        v = v.copy()
        v[7] = np.nan
        return e, v

    with F.register_functional("nan-maker", "lda", nan_at_7) as xc:
        with pytest.raises(CallbackError, match=r"functional 'nan-maker' \(id \d+\) returned a non-finite vrho \(nan\) at point 7"):
            solidxc.scf(si, xc=xc)


def test_unregistered_functional_is_a_clear_error(si):
    xc = F.register_functional("short-lived", "lda", lda_eval)
    xc.unregister()
    assert not xc.active
    with pytest.raises(InputError, match=r"functional 'short-lived' \(id \d+\) was unregistered"):
        solidxc.scf(si, xc=xc)
    with pytest.raises(InputError, match="unknown functional 'short-lived'"):
        solidxc.scf(si, xc="short-lived")


def test_unregistering_while_in_use_stops_the_scf_with_a_clear_error(si):
    state = {"calls": 0}

    def vanishing(rho, sigma):
        state["calls"] += 1
        if state["calls"] == 2:
            state["xc"].unregister()  # as another thread might, mid-SCF
        return lda_eval(rho, sigma)

    state["xc"] = F.register_functional("vanishing", "lda", vanishing)
    with pytest.raises(CallbackError, match=r"functional 'vanishing' \(id \d+\) was unregistered while in use"):
        solidxc.scf(si, xc=state["xc"])
    assert state["calls"] == 2


@pytest.mark.parametrize("name, message", [
    ("", "name: must not be empty"),
    ("PBE", "name: 'PBE' is a name of the built-in functional 'pbe'"),
    ("lda_x + lda_c_pw", "name: 'lda_x \\+ lda_c_pw' is a name of the built-in functional 'lda,pw'"),
])
def test_registration_names_must_be_nonempty_and_shadow_no_builtin(name, message):
    with pytest.raises(InputError, match=message):
        F.register_functional(name, "lda", lda_eval)


def test_registration_rejects_an_unknown_family():
    with pytest.raises(InputError, match="family"):
        F.register_functional("meta", 4, lda_eval)


def test_eval_entry_point_names_null_arrays_and_bad_sizes(lib):
    import ctypes
    one = (ctypes.c_double * 3)()
    assert lib.sxc_functional_eval(b"lda,pw", -1, None, 1, 1, None, None, one, one, None) == InputError.status
    assert solidxc._lib.last_error() == "rho: is NULL"
    assert lib.sxc_functional_eval(b"pbe", -1, None, 1, 1, one, None, one, one, one) == InputError.status
    assert solidxc._lib.last_error() == "sigma: is NULL"
    assert lib.sxc_functional_eval(b"pbe", -1, None, 1, 1, one, one, one, one, None) == 7
    assert solidxc._lib.last_error() == "sxc_functional_eval: vsigma is NULL"
    assert lib.sxc_functional_eval(b"lda,pw", -1, None, -4, 1, one, None, one, one, None) == InputError.status
    assert solidxc._lib.last_error().startswith("npoints: npoints is -4")
    assert lib.sxc_functional_eval(b"pbe", -1, b'{"kappa": "big"}', 1, 1, one, one, one, one, one) == InputError.status
    assert solidxc._lib.last_error() == "params.kappa: expected a number, got the string \"big\""
    assert lib.sxc_functional_eval(None, 999, None, 1, 1, one, None, one, one, None) == InputError.status
    assert "no functional has id 999" in solidxc._lib.last_error()


# ---- (e) Parameterised built-ins ------------------------------------------------------------

@pytest.mark.parametrize("nspin", [1, 2])
@pytest.mark.parametrize("param", ["kappa", "mu", "beta"])
def test_pbe_parameter_derivative_matches_central_differences(nspin, param):
    rho, sigma, _ = gga_points(nspin)
    base = {"kappa": 0.7, "mu": 0.25, "beta": 0.06}
    f = F.Builtin("pbe", **base)
    exact = f.param_derivative(param, rho, sigma)
    h = 1e-4 * base[param]
    plus = F.eval_xc("pbe", rho, sigma, params={**base, param: base[param] + h})
    minus = F.eval_xc("pbe", rho, sigma, params={**base, param: base[param] - h})
    for name, d, p, m in zip(("e", "vrho", "vsigma"), exact, plus, minus):
        assert_close(d, (p - m) / (2 * h), 1e-7, f"d{name}/d{param}")


def test_builtin_with_kappa_differs_from_default_and_validates_parameters():
    rho, sigma, _ = gga_points(1)
    default, changed = F.Builtin("pbe").eval(rho, sigma), F.Builtin("pbe", kappa=0.9).eval(rho, sigma)
    assert np.all(changed[0] != default[0])
    assert F.Builtin("pbe", kappa=0.9).parameters["kappa"] == 0.9
    with pytest.raises(InputError, match="parameter 'kappa' of 'pbe' is -1.0"):
        F.Builtin("pbe", kappa=-1)
    with pytest.raises(InputError, match="has no parameter 'gamma'"):
        F.Builtin("pbe", gamma=1)
    with pytest.raises(InputError, match="has no parameter 'kappa'"):
        F.Builtin("lda,pw").param_derivative("kappa", rho)


def test_scf_with_a_parameterised_builtin_and_its_energy_derivative(si, si_pbe):
    """The energy is variational, so dE/dkappa = integral of de/dkappa at the converged density:
    the core's exact parameter derivative against central differences of re-converged SCFs
    (steps 1e-3 and 5e-4, Richardson-extrapolated: their errors, 7e-7 and 2e-7 relative, fall as h^2)."""
    kappa = 0.9
    result = solidxc.scf(si, xc=F.Builtin("pbe", kappa=kappa), tol=1e-12)
    assert result.energy != pytest.approx(si_pbe.energy, abs=1e-4)
    assert result.energy == pytest.approx(solidxc.scf(si, xc="pbe", tol=1e-12, xc_parameters={"kappa": kappa}).energy,
                                          abs=1e-10)
    rho, sigma = result.xc_inputs()
    de, _, _ = F.Builtin("pbe", kappa=kappa).param_derivative("kappa", rho, sigma)
    exact = de.sum() * result.dv

    def central(h):
        up = solidxc.scf(si, xc=F.Builtin("pbe", kappa=kappa + h), tol=1e-12, start=result).energy
        down = solidxc.scf(si, xc=F.Builtin("pbe", kappa=kappa - h), tol=1e-12, start=result).energy
        return (up - down) / (2 * h)

    fd = (4 * central(5e-4) - central(1e-3)) / 3
    assert exact == pytest.approx(fd, rel=2e-7), (exact, fd)

"""Reverse-mode gradients through the converged SCF ([grad] issue) against central finite
differences of re-converged SCFs (SCF tolerance 1e-14 Ha, density residual 1e-10 e).

Each check perturbs the parameters along one direction v (all NN weights at once along a random
unit direction, or a single scalar such as HybridXC's a or b, or PBE's kappa or mu) and compares
dL/dt = grad L . v from ``loss.backward()`` with (L(+h) - L(-h)) / 2h. Requirement: relative
error <= 1e-5. The measured errors are printed (pytest -s) and quoted in the issue note.

Losses: energy (E - E_ref)^2; density sum((rho - rho_ref)^2) dv with a reference that lacks
the crystal's symmetry (the backward pass must project dL/drho onto the symmetric part); and an
eigenvalue loss (the direct gap at Gamma for Si, a band sum for the metals), symmetric within
degenerate levels. Systems: Si (insulator; LDA and GGA), Al (Fermi-Dirac smeared metal) and
ferromagnetic fcc Ni (spin-polarised PBE at a modest Ecut).
"""
from __future__ import annotations

import numpy as np
import pytest

import solidxc
from solidxc.functional import Builtin

torch = pytest.importorskip("torch")
from solidxc.torch import HybridXC, NNLDA, NNPBE, scf  # noqa: E402

BOHR = 0.52917721092
SCF = dict(tol=1e-14, density_tol=1e-10, maxiter=300)
H = 5e-4
RTOL = 1e-5


def fcc(a_angstrom):
    a = a_angstrom / BOHR
    return 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), a


def silicon(pseudo, origin=(0.0, 0.0, 0.0)):
    lattice, a = fcc(5.431)
    o = np.asarray(origin)
    return solidxc.System(lattice, [("Si", list(o)), ("Si", list(o + a / 4))], pseudo=pseudo, ecut=8, kpts=(2, 2, 2))


def aluminium():
    lattice, _ = fcc(4.05)
    return solidxc.System(lattice, [("Al", [0, 0, 0])], ecut=8, kpts=(3, 3, 3), smearing="fermi-dirac", temperature=0.02)


def nickel():
    lattice, _ = fcc(3.52)
    return solidxc.System(lattice, [("Ni", [0, 0, 0])], pseudo="gth-pbe", ecut=30, kpts=(2, 2, 2),
                          smearing="fermi-dirac", temperature=0.01, magmoms=[1.0])


def gamma_gap(out):
    """Direct gap at Gamma of Si: mean of bands 4-6 (conduction, threefold) minus bands 1-3."""
    k = int(np.argmin(np.linalg.norm(out.result.kpoints, axis=1)))
    return out.eigenvalues[0, k, 4:7].mean() - out.eigenvalues[0, k, 1:4].mean()


def band_sum(out):
    """The lowest band at every k-point, k-weighted (non-degenerate in Al and Ni)."""
    w = torch.from_numpy(out.result.kweights)
    return (out.eigenvalues[:, :, 0] * w).sum()


def make_losses(reference, eigen_loss):
    """Loss functions of an SCFOutput, with references taken from the unperturbed run."""
    e_ref = reference.result.energy - 0.1
    rng = np.random.default_rng(3)
    rho_ref = torch.from_numpy(reference.result.density * 2 * rng.random(reference.result.density.shape))
    dv = reference.result.dv
    losses = {
        "energy": lambda out: (out.energy - e_ref) ** 2,
        "density": lambda out: ((out.density - rho_ref) ** 2).sum() * dv,
    }
    if eigen_loss is not None:
        losses["eigenvalue"] = eigen_loss
    return losses


def directions(model, seed=0):
    """Unit directions in parameter space: every NN weight at once, then a and b."""
    gen = torch.Generator().manual_seed(seed)
    nn = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in model.nnxc.parameters()]
    norm = torch.sqrt(sum((d ** 2).sum() for d in nn))
    named = {"nn": {p: d / norm for p, d in zip(model.nnxc.parameters(), nn)},
             "a": {model.aweight: torch.ones((), dtype=torch.float64)},
             "b": {model.bweight: torch.ones((), dtype=torch.float64)}}
    return named


def shifted(model, direction, t):
    with torch.no_grad():
        for p, d in direction.items():
            p.add_(t * d)


def check_model(system, model, eigen_loss, label, nbands=None):
    kwargs = dict(SCF, **({"nbands": nbands} if nbands else {}))
    base = scf(system, model, **kwargs)
    losses = make_losses(base, eigen_loss)
    failures = []
    for dname, direction in directions(model).items():
        # Finite differences: SCFs re-converged from the atomic guess at t = +-h and +-2h,
        # Richardson-extrapolated: (4 D(h) - D(2h)) / 3 has an O(h^4) error. (A warm start from
        # t = 0 biases every displaced SCF toward it by its stopping error, an error ~1/h.)
        values = {}
        for t in (H, -H, 2 * H, -2 * H):
            shifted(model, direction, t)
            out = scf(system, model, **kwargs)
            values[t] = {name: float(fn(out)) for name, fn in losses.items()}
            shifted(model, direction, -t)
        for lname, fn in losses.items():
            model.zero_grad()
            fn(base).backward(retain_graph=True)
            analytic = sum(float((p.grad * d).sum()) for p, d in direction.items() if p.grad is not None)
            d1 = (values[H][lname] - values[-H][lname]) / (2 * H)
            d2 = (values[2 * H][lname] - values[-2 * H][lname]) / (4 * H)
            fd = (4 * d1 - d2) / 3
            rel = abs(analytic - fd) / max(abs(fd), 1e-12)
            print(f"{label}: d{lname}/d{dname}: backward {analytic:.10e}, finite difference {fd:.10e}, relative {rel:.1e}")
            if rel > RTOL:
                failures.append((lname, dname, analytic, fd, rel))
    assert not failures, failures


def test_silicon_lda_nnlda_hybrid_gradients():
    torch.manual_seed(1)
    model = HybridXC("lda,pw", NNLDA(2, 6, 1), aweight0=0.5, bweight0=1.0)
    check_model(silicon("gth-pade"), model, gamma_gap, "Si LDA")


def test_silicon_gga_nnpbe_hybrid_gradients():
    torch.manual_seed(2)
    # DeepChem's NNPBE feeds s = |grad n| / n^(4/3) (not s^2) to the network, so a generic network
    # has vsigma ~ 1/|grad n| and second derivatives ~ |grad n|^-3 where grad n vanishes (atoms,
    # bond centres). The SCF still converges, but finite differences there lose ~4 digits. The
    # network here is a generic MLP behind a layer that squares s, which keeps NNPBE's inputs and
    # semantics (e = nnmodel(n, xi, s) n) with a functional smooth in sigma, as PBE is.
    class SquareS(torch.nn.Module):
        def forward(self, x):
            return torch.cat((x[..., :2], x[..., 2:] ** 2), dim=-1)

    mlp = torch.nn.Sequential(SquareS(), torch.nn.Linear(3, 6), torch.nn.Softplus(), torch.nn.Linear(6, 1)).double()
    model = HybridXC("pbe", NNPBE(mlp), aweight0=0.05, bweight0=1.0)
    check_model(silicon("gth-pbe"), model, gamma_gap, "Si PBE")


def test_smeared_aluminium_gradients():
    torch.manual_seed(3)
    model = HybridXC("lda,pw", NNLDA(2, 6, 1), aweight0=0.5, bweight0=1.0)
    check_model(aluminium(), model, band_sum, "Al FD")


def test_spin_polarised_nickel_gradients():
    torch.manual_seed(4)
    # An LDA network (inputs n and the spin polarisation xi) on the PBE base: a random GGA
    # network puts noise ~1e-7 e into Ni's SCF through s at low density.
    model = HybridXC("pbe", NNLDA(2, 6, 1), aweight0=0.2, bweight0=1.0)
    system = nickel()
    magnetization = scf(system, model, **SCF).result.magnetization.total
    assert magnetization > 0.3, f"the check needs a magnetic state, got M = {magnetization} muB"
    check_model(system, model, band_sum, "Ni spin PBE")


@pytest.mark.parametrize("param", ["kappa", "mu"])
def test_pbe_kappa_and_mu_gradients_through_numpy(param):
    """Refitting PBE's kappa and mu (DFTK's study): numpy only, no torch in the loop."""
    system = silicon("gth-pbe")
    values = {"kappa": 0.85, "mu": 0.23}
    functional = Builtin("pbe", **values)
    result = solidxc.scf(system, functional, **SCF)
    rng = np.random.default_rng(5)
    rho_ref = result.density * (1 + 0.2 * rng.standard_normal(result.density.shape))
    e_ref = result.energy - 0.1

    def loss(r):
        return (r.energy - e_ref) ** 2 + ((r.density - rho_ref) ** 2).sum() * r.dv

    adjoints = result.backward(2 * (result.energy - e_ref), 2 * (result.density - rho_ref) * result.dv)
    analytic = functional.parameter_gradients(result, adjoints, [param])[param]
    fd_values = []
    for sign in (+1, -1):
        shifted_values = dict(values)
        shifted_values[param] += sign * H
        fd_values.append(loss(solidxc.scf(system, Builtin("pbe", **shifted_values), **SCF)))
    fd = (fd_values[0] - fd_values[1]) / (2 * H)
    rel = abs(analytic - fd) / abs(fd)
    print(f"Si PBE: dL/d{param}: backward {analytic:.10e}, finite difference {fd:.10e}, relative {rel:.1e}")
    assert rel < RTOL

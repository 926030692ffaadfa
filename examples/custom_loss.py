"""A custom loss in a plain PyTorch loop: SolidXC's SCF as a differentiable layer.

The functional is a HybridXC (e = a NN + b LDA, DeepChem's modules); the loss asks it to
reproduce the PBE density and the PBE energy of silicon:

    L = sum((rho - rho_PBE)^2) dv + (E - E_PBE)^2

``solidxc.torch.scf(system, xc)`` runs the SCF with the module's current parameters and returns
tensors (energy, density, eigenvalues). ``loss.backward()`` runs the adjoint of the converged SCF
in the core (one linear-response solve for the density term; the energy term needs none) and one
autograd pass through the network. Any PyTorch optimiser, scheduler or loss works on top.

    python3 examples/custom_loss.py [--steps 8]

Each step is one SCF and one backward pass (about a second here).
"""

import argparse

import numpy as np
import torch

import solidxc
from solidxc.torch import HybridXC, NNLDA, scf


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.005)
    args = parser.parse_args()

    a = 5.431 / 0.52917721092  # Si, bohr
    system = solidxc.System([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]],
                            [("Si", (0, 0, 0)), ("Si", (a / 4, a / 4, a / 4))], pseudo="gth-pade", ecut=10, kpts=(2, 2, 2))
    target = solidxc.scf(system, "pbe", tol=1e-11, density_tol=1e-9)
    rho_ref = torch.from_numpy(target.density)
    e_ref = target.energy

    torch.manual_seed(0)
    xc = HybridXC("lda,pw", NNLDA(2, 10, 1), aweight0=0.0, bweight0=1.0)   # float64 network
    optimizer = torch.optim.Adam(xc.parameters(), lr=args.lr)
    print(f"{'step':>4s} {'loss':>12s} {'density part':>13s} {'energy part':>12s} {'a':>8s} {'b':>8s}")
    for step in range(args.steps):
        optimizer.zero_grad()
        out = scf(system, xc, tol=1e-11, density_tol=1e-9)   # differentiable outputs
        density_part = ((out.density - rho_ref) ** 2).sum() * system.dv
        energy_part = (out.energy - e_ref) ** 2
        loss = density_part + energy_part
        loss.backward()                                       # adjoint SCF + autograd through the network
        optimizer.step()
        print(f"{step:4d} {loss.item():12.5e} {density_part.item():13.5e} {energy_part.item():12.5e} "
              f"{xc.aweight.item():8.4f} {xc.bweight.item():8.4f}")
    assert np.isfinite(loss.item())


if __name__ == "__main__":
    main()

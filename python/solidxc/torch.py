"""The self-consistent field as a differentiable PyTorch layer.

::

    from solidxc.torch import scf, NNLDA, NNPBE, HybridXC
    xc = HybridXC("pbe", nnmodel, aweight0=0.0, bweight0=1.0)   # e = a*NN + b*base; a, b trainable
    out = scf(system, xc)            # out.energy (0-d), out.density (nspin, n1, n2, n3), out.eigenvalues
    loss = (out.energy - e_ref) ** 2 + ((out.density - rho_ref) ** 2).sum() * system.dv
    loss.backward()                  # reaches nnmodel's parameters, a and b

The forward pass runs the SCF in the core with the module registered as a functional (its
current parameters are read at every evaluation). The backward pass is the adjoint of the
converged SCF (ADJOINT.md): the core returns grid adjoints (the loss's sensitivity to the
functional's outputs e, vrho, vsigma at every grid point), and one ``torch.autograd.grad``
through the module's ``xc_outputs`` turns them into parameter gradients. An energy-only loss
needs no response solve; density and eigenvalue losses solve the Dyson equation by GMRES.

Use float64 modules (``module.double()``): the SCF runs in double precision, and a float32
network limits the gradients' accuracy to ~1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import functional as _functional
from .functional import NNLDA, NNPBE, HybridXC  # noqa: F401  (re-exported: the documented import)
from .errors import SolidXCError
from .scf import SCFResult, scf as _scf
from .system import System

__all__ = ["scf", "SCFOutput", "NNLDA", "NNPBE", "HybridXC"]


@dataclass
class SCFOutput:
    """Differentiable outputs of :func:`scf`. Atomic units (Ha, electrons/bohr^3).

    energy : 0-d tensor, the (free) energy per cell
    density : (nspin, n1, n2, n3) tensor
    eigenvalues : (nspin, nk, nband) tensor, at the irreducible k-points of ``result.kweights``
    result : the underlying :class:`solidxc.SCFResult` (numpy arrays, occupations, k-points, ...)
    """

    energy: torch.Tensor
    density: torch.Tensor
    eigenvalues: torch.Tensor
    result: SCFResult


class _Context:
    """What the backward pass needs, carried through autograd as a non-tensor argument."""

    def __init__(self, result: SCFResult, module: Any, params: list, tol: float, maxiter: int,
                 on_backward_failure: Any = None, time_limit: float | None = None):
        self.result = result
        self.on_backward_failure = on_backward_failure
        self.module = module
        self.params = params
        self.tol = tol
        self.maxiter = maxiter
        self.time_limit = time_limit
        self.last_adjoints = None


def _nonzero(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    arr = t.detach().cpu().double().numpy()
    return arr if np.any(arr != 0) else None


class _SCFLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, context: _Context, *params):
        ctx.context = context
        r = context.result
        return (torch.tensor(r.energy, dtype=torch.float64), torch.from_numpy(np.array(r.density)),
                torch.from_numpy(np.array(r.eigenvalues)))

    @staticmethod
    def backward(ctx, g_energy, g_density, g_eigenvalues):
        c: _Context = ctx.context
        d_e = float(g_energy) if g_energy is not None else 0.0
        try:
            adj = c.result.backward(d_e, _nonzero(g_density), _nonzero(g_eigenvalues), tol=c.tol, maxiter=c.maxiter,
                                      time_limit=c.time_limit)
        except SolidXCError as exc:
            if c.on_backward_failure is None:
                raise
            c.on_backward_failure(exc)  # the caller records it; this SCF then contributes no gradient
            return (None,) + tuple(torch.zeros_like(p) for p in c.params)
        c.last_adjoints = adj
        if not c.params:
            return (None,)
        rho, sigma = c.result.xc_inputs()
        with torch.enable_grad():
            rho_t = torch.from_numpy(np.array(rho)).requires_grad_(True)
            sigma_t = torch.from_numpy(np.array(sigma)).requires_grad_(True) if sigma is not None else None
            e, vrho, vsigma = c.module.xc_outputs(rho_t, sigma_t, create_graph=True)
            outputs = [e, vrho]
            grads_out = [torch.from_numpy(adj.adj_e).to(e.dtype), torch.from_numpy(np.array(adj.adj_vrho)).to(vrho.dtype)]
            if vsigma is not None and adj.adj_vsigma is not None:
                outputs.append(vsigma)
                grads_out.append(torch.from_numpy(np.array(adj.adj_vsigma)).to(vsigma.dtype))
            grads = torch.autograd.grad(outputs, c.params, grads_out, allow_unused=True)
        return (None,) + tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, c.params))


def scf(system: System, xc: Any, *, tol: float = 1e-10, backward_tol: float = 1e-10, backward_maxiter: int = 100,
        on_backward_failure: Any = None, backward_time_limit: float | None = None, **scf_kwargs: Any) -> SCFOutput:
    """Runs the SCF with ``xc`` and returns differentiable outputs.

    Parameters
    ----------
    system : solidxc.System
    xc : torch.nn.Module or str
        A module with ``xc_outputs(rho, sigma)`` and ``as_registered()`` (``NNLDA``, ``NNPBE``,
        ``HybridXC``, or your own built on :mod:`solidxc.functional`); or a built-in name,
        whose outputs carry no parameters.
    tol : float
        SCF energy tolerance, Ha. Gradients are as accurate as the SCF is converged.
    backward_tol, backward_maxiter, backward_time_limit
        Relative residual, iteration limit and wall-clock limit (seconds, default none) of the
        response (Dyson) solve in the backward pass.
    on_backward_failure : callable, optional
        Called with the exception when the backward pass fails (a response solve that does not
        converge); this SCF then contributes zero gradients. By default the exception propagates.
    **scf_kwargs
        Passed to :func:`solidxc.scf` (``nbands``, ``maxiter``, ``threads``, ``start``, ...).
    """
    if isinstance(xc, torch.nn.Module):
        registered = xc.as_registered()
        params = [p for p in xc.parameters() if p.requires_grad]
        result = _scf(system, registered, tol=tol, **scf_kwargs)
        context = _Context(result, xc, params, backward_tol, backward_maxiter, on_backward_failure,
                           backward_time_limit)
    else:
        result = _scf(system, xc, tol=tol, **scf_kwargs)
        context = _Context(result, None, [], backward_tol, backward_maxiter, on_backward_failure,
                           backward_time_limit)
    energy, density, eigenvalues = _SCFLayer.apply(context, *context.params)
    return SCFOutput(energy, density, eigenvalues, result)

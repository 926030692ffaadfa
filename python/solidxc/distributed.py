"""Data-parallel training of :class:`solidxc.deepchem.DFTXC` over processes (``torch.distributed``).

Each rank runs the SCFs of its shard of the entries (entry ``i`` goes to rank ``i % world_size``,
in the order given), and the loss and gradient are those of one process on all entries::

    L = (1 / N) sum_i w_i (p_i - y_i)^2          (N: all entries, every rank)

Rank ``r``'s local loss is its partial sum divided by the global ``N``; the ranks' gradients are
summed. Launch with torchrun (``examples/train_ddp.py``)::

    torchrun --nproc_per_node=2 examples/train_ddp.py --dataset python/solidxc/data/small.yaml

    from solidxc import distributed
    distributed.init()                            # env:// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
    model = DFTXC("pbe", nnmodel, aweight0=0.3)   # same construction on every rank
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        loss = distributed.distributed_step(model, entries, optimizer)   # all entries, every rank

Design: the model is wrapped (once, cached on the model) in
``torch.nn.parallel.DistributedDataParallel`` around a small module that computes the local loss,
with a communication hook that SUMS the gradient buckets (DDP's default averages them; the sum
of the ranks' ``partial / N`` gradients is the global gradient exactly, with no rescaling). The
local loss always includes ``0 * sum(p)`` over the trainable parameters, so that every parameter
is in the autograd graph on every rank, even a rank with no entries (fewer entries than ranks) or
whose entries all failed (``on_failure="skip"``): DDP needs every rank to produce every gradient,
and ``find_unused_parameters`` is not needed. (With ``aweight = 0`` the network's weights are in
the graph anyway: the SCF layer returns zero gradients for them, not None.) Wrapping broadcasts
rank 0's parameters to the other ranks, so all ranks start from the same functional.

Without a process group (no torchrun variables, or ``world_size == 1``) the same functions run
everything in this process.

With ``on_failure="raise"``, an entry whose SCF fails, or whose response solve fails in the
backward pass (reported through ``solidxc.torch.scf(on_backward_failure=...)`` when it has that
option), raises on every rank (the others raise a ``RuntimeError`` naming the rank), instead of
leaving them waiting in the gradient reduction; the optimiser does not step. Any other exception
inside the backward pass leaves the other ranks waiting until the launcher stops them (torchrun
does when a worker exits) or the process group times out. With ``on_failure="skip"`` failures
are skipped as in one process; ``model.failures`` counts this rank's only.

SCF threads: with more than one rank, the SCFs run with ``threads=1`` unless
``model.scf_options`` sets ``threads`` (torchrun also sets ``OMP_NUM_THREADS=1``). The result
of an SCF does not depend on its thread count, but does on torch's intra-op thread count (the
network's outputs change in the last bits, which can change an SCF's iteration count, so
results move at the level of the SCF tolerance): runs are reproducible to rounding across
world sizes when torch's thread count is the same.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

from .errors import InputError

__all__ = ["init", "finalize", "rank", "world_size", "is_distributed", "shard", "local_loss",
           "distributed_step", "gradients"]


# --------------------------------------------------------------------------------------------------
# Process group
# --------------------------------------------------------------------------------------------------

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init(backend: str = "gloo", **kwargs: Any) -> tuple[int, int]:
    """Joins the process group that torchrun describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; ``init_method="env://"``).

    Without ``RANK`` and ``WORLD_SIZE`` this is one process: nothing is initialised and
    ``(0, 1)`` is returned. If a process group already exists it is used as is. ``kwargs``
    go to :func:`torch.distributed.init_process_group` (e.g. ``timeout``).

    Returns ``(rank, world_size)``.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        return 0, 1
    missing = [k for k in _ENV if not os.environ.get(k)]
    if missing:
        raise InputError(f"distributed: {', '.join(missing)} not set; launch with torchrun (which sets "
                         f"{', '.join(_ENV)}) or set all of them", 1)
    try:
        r, n = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except ValueError:
        raise InputError(f"distributed: RANK={os.environ['RANK']!r}, WORLD_SIZE={os.environ['WORLD_SIZE']!r}: "
                         f"expected integers", 1) from None
    if not (n >= 1 and 0 <= r < n):
        raise InputError(f"distributed: RANK={r} must lie in 0..WORLD_SIZE-1 (WORLD_SIZE={n})", 1)
    if not dist.is_available():  # pragma: no cover - torch built without distributed
        raise InputError("distributed: this torch build has no torch.distributed", 1)
    dist.init_process_group(backend=backend, init_method="env://", rank=r, world_size=n, **kwargs)
    return dist.get_rank(), dist.get_world_size()


def finalize() -> None:
    """Leaves the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True when a process group with more than one rank is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


_current_rank = rank


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


# --------------------------------------------------------------------------------------------------
# Sharding and the local loss
# --------------------------------------------------------------------------------------------------

def _entry_list(entries: Any) -> list:
    """A list of entries from a list, an array of entries, or a dataset (its ``X``), in order."""
    if hasattr(entries, "X") and not isinstance(entries, (list, tuple)):
        entries = entries.X
    if isinstance(entries, np.ndarray):
        return list(np.ravel(entries))
    return list(entries)


def shard(entries: Sequence[Any], rank: int | None = None, world: int | None = None) -> list:
    """The entries of ``rank``: ``entries[i]`` for ``i % world == rank``, in the given order.
    ``rank`` and ``world`` default to this process's."""
    rank = _current_rank() if rank is None else int(rank)
    world = world_size() if world is None else int(world)
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"shard: rank {rank} must lie in 0..world-1 (world = {world})", 1)
    return [e for i, e in enumerate(_entry_list(entries)) if i % world == rank]


def _targets(entries: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.tensor([float(np.asarray(e.label(), dtype=float).reshape(-1)[0]) for e in entries],
                          dtype=torch.float64)
    weights = torch.tensor([float(e.get_weight()) for e in entries], dtype=torch.float64)
    return labels, weights


def _trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def local_loss(model: torch.nn.Module, entries: Sequence[Any], n_total: int) -> torch.Tensor:
    """This rank's part of the global loss: sum over ``entries`` of w (p - y)^2, divided by
    ``n_total``, plus ``0 * sum(p)`` over the trainable parameters (so every parameter is in the
    graph, even with no entries). A 0-d float64 tensor."""
    zero = torch.zeros((), dtype=torch.float64)
    for p in _trainable(model):
        zero = zero + (p * 0).sum().to(torch.float64)
    entries = list(entries)
    if not entries:
        return zero
    labels, weights = _targets(entries)
    predictions = model(entries).reshape(-1)
    return (weights * (predictions - labels) ** 2).sum() / float(n_total) + zero


class _LocalLoss(torch.nn.Module):
    """What DDP wraps: forward(entries, n_total) = the local loss of ``model``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, entries: list, n_total: int) -> torch.Tensor:
        return local_loss(self.model, entries, n_total)


def _sum_hook(group, bucket):  # no annotations: DDP checks them, and this module's are strings
    """DDP communication hook: all-reduce SUM of the bucket (DDP's default divides by world size)."""
    fut = dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, group=group, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


class _DDPHandle:
    """The DDP wrapper cached in a model's ``__dict__`` (not a submodule: not in ``state_dict``,
    not moved or pickled with the model; a copy of the model gets an empty handle)."""

    def __init__(self):
        self.key = None
        self.ddp = None

    def __reduce__(self):
        return (_DDPHandle, ())


def _ddp(model: torch.nn.Module) -> torch.nn.Module:
    """The cached DDP wrapper of ``model``'s local loss, (re)built when the process group or the
    set of trainable parameters changed. Building it is collective (it broadcasts rank 0's
    parameters), so every rank calls this at the same point."""
    handle = model.__dict__.get("_solidxc_ddp")
    if not isinstance(handle, _DDPHandle):
        handle = _DDPHandle()
        model.__dict__["_solidxc_ddp"] = handle
    key = (id(dist.group.WORLD), dist.get_world_size(), tuple(id(p) for p in _trainable(model)))
    if handle.ddp is None or handle.key != key:
        ddp = torch.nn.parallel.DistributedDataParallel(_LocalLoss(model), device_ids=None,
                                                        find_unused_parameters=False)
        ddp.register_comm_hook(None, _sum_hook)
        handle.ddp, handle.key = ddp, key
    return handle.ddp


def _forget_ddp(model: torch.nn.Module) -> None:
    handle = model.__dict__.get("_solidxc_ddp")
    if isinstance(handle, _DDPHandle):
        handle.ddp, handle.key = None, None


def _supports_backward_hook() -> bool:
    """Whether solidxc.torch.scf takes ``on_backward_failure`` (a failed response solve reported
    to a callback, that SCF contributing zero gradients, instead of an exception)."""
    from . import torch as sxc_torch
    return "on_backward_failure" in inspect.signature(sxc_torch.scf).parameters


@contextlib.contextmanager
def _rank_scf_options(model: torch.nn.Module, world: int, backward_failures: list) -> Iterator[None]:
    """The SCF options of a rank's forward pass: ``threads=1`` while several ranks share the
    machine (unless the caller set ``threads``); with ``on_failure="raise"``, a failed response
    solve in the backward pass is recorded in ``backward_failures`` (and raised on every rank
    after the gradient reduction) instead of raising in the middle of DDP's reduction."""
    options = getattr(model, "scf_options", None)
    if world <= 1 or not isinstance(options, dict):
        yield
        return
    changed = dict(options)
    if "threads" not in changed:
        changed["threads"] = 1
    if (getattr(model, "on_failure", None) == "raise" and "on_backward_failure" not in changed
            and _supports_backward_hook()):
        changed["on_backward_failure"] = backward_failures.append
    model.scf_options = changed
    try:
        yield
    finally:
        model.scf_options = options


def _any_rank(flag: bool, world: int) -> list[int]:
    """The ranks whose ``flag`` is true (collective)."""
    flags = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(flags, torch.tensor([int(bool(flag))], dtype=torch.int64))
    return [r for r, f in enumerate(flags) if int(f)]


def _dftxc(model: Any) -> torch.nn.Module:
    """The DFTXC of a DFTXC or of an XCModel (its ``.model``)."""
    if not isinstance(model, torch.nn.Module) and isinstance(getattr(model, "model", None), torch.nn.Module):
        return model.model
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"distributed: expected a DFTXC module (or an XCModel), got {type(model).__name__}")
    return model


def _backward(model: torch.nn.Module, entries: Any) -> float:
    """Local forward and backward with summed gradients in every parameter's ``.grad``; the
    global loss (the same number on every rank)."""
    entries = _entry_list(entries)
    n_total = len(entries)
    if n_total == 0:
        raise InputError("entries: no entries", 1)
    model.train()
    if not is_distributed():
        loss = local_loss(model, entries, n_total)
        loss.backward()
        return float(loss.detach())

    world, me = dist.get_world_size(), dist.get_rank()
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([n_total], dtype=torch.int64))
    if any(int(c) != n_total for c in counts):
        raise InputError(f"entries: the ranks were given different numbers of entries "
                         f"({[int(c) for c in counts]}); give every rank the full list", 1)
    ddp = _ddp(model)
    error: BaseException | None = None
    backward_failures: list = []
    try:
        with _rank_scf_options(model, world, backward_failures):
            loss = ddp(shard(entries, me, world), n_total)
    except Exception as exc:  # re-raised below, after telling the other ranks
        error = exc
    bad = _any_rank(error is not None, world)
    if bad:
        _forget_ddp(model)  # a rank's DDP may be waiting for a backward that will not come
        if error is not None:
            raise error
        raise RuntimeError(f"distributed: the forward pass failed on rank(s) {bad}; see their output")
    try:
        loss.backward()  # DDP sums the gradients over the ranks here
    except BaseException:
        # An exception inside the backward pass (not a response solve reported above) leaves
        # this rank out of the reduction: the others wait until the launcher stops them (torchrun
        # does when this process exits) or the process group times out.
        _forget_ddp(model)
        raise
    bad = _any_rank(bool(backward_failures), world)
    if bad:
        if backward_failures:
            raise backward_failures[0]
        raise RuntimeError(f"distributed: a response solve failed in the backward pass on rank(s) {bad}; "
                           f"see their output")
    total = loss.detach().clone().reshape(1)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total[0])


def gradients(model: Any, entries: Any, with_loss: bool = False) -> Any:
    """The gradient of the global loss over all ``entries``, without an optimiser step:
    ``{parameter name: tensor}`` for the trainable parameters (zeros where the gradient is
    None), identical on every rank; ``(loss, gradients)`` with ``with_loss=True``. Collective:
    every rank calls it with the same entries. Leaves the gradients in the parameters' ``.grad``."""
    model = _dftxc(model)
    model.zero_grad(set_to_none=True)
    loss = _backward(model, entries)
    grads = {name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
             for name, p in model.named_parameters() if p.requires_grad}
    return (loss, grads) if with_loss else grads


def distributed_step(model: Any, entries: Any, optimizer: torch.optim.Optimizer) -> float:
    """One optimisation step over all ``entries``: zero_grad, this rank's SCFs, local
    loss and backward, gradient sum over ranks (in DDP's backward), ``optimizer.step()``.
    Returns the global loss before the step, the same on every rank. Collective: every rank
    calls it with the same entries (the full list: each rank takes its shard)."""
    model = _dftxc(model)
    optimizer.zero_grad(set_to_none=True)
    loss = _backward(model, entries)
    optimizer.step()
    return loss

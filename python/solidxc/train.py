"""``solidxc train DATASET.yaml``: trains a HybridXC functional (a neural network plus PBE) on the
dataset's training entries and reports lattice constants on the training and held-out sets.

- Model: ``HybridXC("gga_x_pbe + gga_c_pbe", network)``, e = a NN + b PBE, with a = 0 and
  b = 1 at the start (DeepChem's default), so training starts from PBE. The network is
  ``NNEnhancement(uniform_gas=True)`` by default (``--network gradient``: e_x^unif(n) p~ times a
  network of bounded inputs; finite potentials in vacuum; no correction where s = 0, and b stays
  1, so the uniform electron gas stays PBE's), ``NNEnhancement`` (``--network enhancement``: no
  factor p~, b trained) or DeepChem's ``NNPBE`` (``--network nnpbe``), each with ``--hidden`` units.
- Loss: mean over a batch of w_i (100 (p_i - t_i) / y_i)^2 for ``lattice`` entries (relative
  errors in per cent) and w_i (p_i - t_i)^2 (atomic units) for the others. The target t_i is the
  experimental value y_i (``--targets experiment``) or, with ``--targets pseudo-corrected``,
  y_i + (PBE_i - PBE_i^ref): our PBE a0 minus an all-electron-quality PBE a0 of the same solid
  (the entry's ``pbe_reference_angstrom``) is the error of the pseudopotential, so the network is
  trained on the functional's error only, not on the pseudopotentials' (cheap reduced-valence
  pseudopotentials put up to 1.4 % into some entries). ``auto`` (the default) corrects when every
  training entry has a reference. Results are always reported against experiment.
- Optimiser (``--optimizer``): Adam, one step per batch (default), or Gauss-Newton: per epoch every
  training entry's prediction and gradient (in ``--jobs`` processes), then one Levenberg-Marquardt
  step on all of them at once, its damping chosen by leave-one-out cross-validation over the
  training entries (no step if none beats standing still), inside a trust region (no parameter
  moves by more than 0.1 at first, no entry's error by more than 2 %). The next epoch's predictions
  check the step: one that raised the training loss is undone and re-taken from its stored
  Jacobian with half the trust region; one that delivered at least 3/4 of its predicted fall while
  held back doubles it (up to 8 times). A run may switch optimiser between epochs. The gradient
  pass stores its predictions in ``predictions.json``: when an evaluation has already computed the
  training predictions after a step and they show it overshot, the next epoch undoes it without a
  gradient pass; and the final evaluation itself checks a last step on the training entries first
  and, if it raised the training loss, reports the parameters it started from (the checkpoint
  keeps the step, so a longer run undoes and re-takes it). Only the training set decides.
- Validation (``--validation NAMES``): those training entries are left out of the fit. After the
  epochs, the network's weight a is scaled by the factor t of ``SHRINK_FACTORS`` (0, 0.2, ..., 1)
  with the smallest loss on them (the training loss's terms and targets; t = 0 is PBE), and the
  results are reported for that functional, with ``validation.png``. This is stopping early on a
  validation set, along the line from PBE to the trained functional: a trained network that does
  not carry over to solids it was not fitted on is scaled down or switched off. The held-out
  entries play no part in it.
- Every epoch ends with a checkpoint (``checkpoint.pt``) holding the model, optimizer, RNG
  states, failure counters, history and the run's settings; a restart resumes from it and
  continues the loss curve. A run killed at any moment (even with SIGKILL) resumes from its last
  finished epoch and ends with the same numbers as a run never interrupted: an epoch's order comes
  from ``seed + epoch`` and the SCFs start cold, so redoing the lost epoch repeats it exactly.
- Checkpoints are written atomically (a temporary file, fsync, rename, fsync of the directory),
  so a kill or power loss leaves the old checkpoint or the new one, never a torn one; the one
  before is kept as ``checkpoint.prev.pt`` and used if ``checkpoint.pt`` cannot be read.
  Temporary files of a killed run are removed at the next start. A lock (``train.lock``) keeps
  two runs out of one directory.
- At the end: lattice constants with PBE and with the trained functional against experiment,
  as ``results.md`` and ``results.csv``, and ``training_curve.png`` and ``parity.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import time
import warnings
from typing import Any, Sequence

import numpy as np

from .units import BOHR_IN_ANGSTROM

BASE = "gga_x_pbe + gga_c_pbe"
#: ``--network`` choices: NNEnhancement with (gradient, the default) or without (enhancement) the
#: uniform-gas constraint, or DeepChem's NNPBE.
NETWORKS = ("gradient", "enhancement", "nnpbe")
#: ``--targets`` choices (see the module docstring).
TARGETS = ("auto", "experiment", "pseudo-corrected")
#: ``--optimizer`` choices: Adam, one step per batch, or a Gauss-Newton (Levenberg-Marquardt) step per
#: epoch on every training entry at once (see ``levenberg_marquardt_step``).
OPTIMIZERS = ("adam", "gauss-newton")
#: Gauss-Newton: damping factors tried, relative to the Jacobian's column norms (dimensionless).
GN_LAMBDAS = tuple(10.0 ** k for k in np.arange(-6.0, 3.01, 0.5))
#: Gauss-Newton: the largest change of any entry's residual (per cent of a0 for lattice entries) the
#: linear model may predict for one step; larger steps are damped until it holds (a trust region).
GN_MAX_CHANGE = 2.0
#: Gauss-Newton: the largest change of any one parameter per step (the network's weights and a). The
#: lattice constant is far from linear in a parameter the data barely sees (a near 0 scales the
#: whole network), so the step is also bounded in parameter space, as Adam's learning rate bounds
#: its steps (here: 20 Adam steps at the default rate).
GN_MAX_PARAMETER_STEP = 0.1
#: Gauss-Newton: a step the trust region held back, and whose real loss fell by at least 3/4 of the
#: predicted fall, doubles the trust region for the next one, up to this many times the start.
GN_MAX_GROWTH = 8
#: Entry keys that document a reference value and do not change what an entry computes; they are
#: left out of the prediction cache's key.
REFERENCE_ONLY = ("pbe_reference_angstrom", "pbe_reference_source")


def _torch():
    import torch
    return torch


#: Files the trainer writes in its output directory; their temporary files are ``NAME.tmp*``.
OUTPUTS = ("checkpoint.pt", "checkpoint.prev.pt", "predictions.json", "results.md", "results.csv",
           "training_curve.png", "parity.png", "validation.png")
#: ``--validation``: the factors t tried for the network's weight (a -> t a; t = 0 is the base, t = 1
#: the trained functional); the one with the smallest validation loss is reported.
SHRINK_FACTORS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class CheckpointError(Exception):
    """A checkpoint that cannot be resumed from: unreadable, or written by a different run setup.
    The message names the file and what to do."""


def _fsync_dir(path: str) -> None:
    """Makes a rename in ``path``'s directory durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:  # pragma: no cover - platform dependent
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, write: Any, keep_previous: str | None = None) -> None:
    """Writes ``path`` through ``write(file)`` so that a crash at any point leaves either the old
    file or the complete new one: a temporary file, flushed and fsynced, renamed over ``path``.
    With ``keep_previous`` the old file is first renamed to that name."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    if keep_previous is not None and os.path.exists(path):
        os.replace(path, keep_previous)
    os.replace(tmp, path)
    _fsync_dir(path)


def _atomic_save(obj: Any, path: str, keep_previous: str | None = None) -> None:
    torch = _torch()
    _atomic_write(path, lambda f: torch.save(obj, f), keep_previous)


def _atomic_text(text: str, path: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _fingerprint(entries: Sequence[Any], references: bool = True) -> str:
    """A digest of the entries' definitions (name, type, value, weight, options, systems), so that a
    checkpoint or a cached prediction is only reused for the dataset it was made from.
    ``references=False`` leaves out the ``REFERENCE_ONLY`` keys (for predictions, which they do not
    change)."""
    import hashlib

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        return repr(value)

    described = [{"name": e.name, "type": e.entry_type, "true_val": str(e.true_val), "weight": e.get_weight(),
                  "split": e.split,
                  "options": {k: v for k, v in e.options.items() if references or k not in REFERENCE_ONLY}, "systems": [s.system for s in e.get_systems()]}
                 for e in entries]
    text = json.dumps(described, sort_keys=True, default=plain)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_loss_term(entry: Any, prediction: Any, target: float | None = None) -> Any:
    """One entry's loss: error against ``target`` (default: the entry's label) relative to the label,
    in per cent, squared, for lattice entries; else the squared error."""
    y = float(np.asarray(entry.label(), dtype=float).reshape(-1)[0])
    t = y if target is None else float(target)
    p = prediction.reshape(-1)[0]
    if entry.entry_type == "lattice":
        return entry.get_weight() * (100.0 * (p - t) / y) ** 2
    return entry.get_weight() * (p - t) ** 2


def pbe_reference(entry: Any) -> float | None:
    """The entry's ``pbe_reference_angstrom`` in bohr (None if absent); InputError if it is not a
    positive number."""
    from .errors import InputError
    value = entry.options.get("pbe_reference_angstrom")
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0 or isinstance(entry.options.get("pbe_reference_angstrom"), bool):
        raise InputError(f"entry {entry.name!r}: pbe_reference_angstrom must be a positive number (Å), got "
                         f"{entry.options.get('pbe_reference_angstrom')!r}", 1)
    if entry.entry_type != "lattice":
        raise InputError(f"entry {entry.name!r}: pbe_reference_angstrom is only meaningful for lattice entries, "
                         f"not {entry.entry_type!r}", 1)
    return value / BOHR_IN_ANGSTROM


def build_model(network: str, hidden: int, on_failure: str = "skip", scf_options: dict | None = None) -> Any:
    """The trainer's ``DFTXC``: HybridXC on PBE with a = 0, b = 1 and the chosen network."""
    from .deepchem import DFTXC, _construct_nn_model
    if network not in NETWORKS:
        raise SystemExit(f"solidxc train: --network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if network in ("gradient", "enhancement"):
        from .functional import NNEnhancement
        nnmodel = NNEnhancement(_construct_nn_model(3, hidden, 1, 1), uniform_gas=network == "gradient")
    else:  # DeepChem's NNPBE around its default network (HybridXC wraps a plain network in NNPBE)
        nnmodel = _construct_nn_model(3, hidden, 1, 1)
    model = DFTXC(BASE, nnmodel, aweight0=0.0, bweight0=1.0, on_failure=on_failure, scf_options=scf_options)
    if network == "gradient":
        # b stays 1: with the network's correction vanishing at s = 0, the functional is exactly PBE
        # (hence exact) for the uniform electron gas, whatever the training does.
        model.hybridxc.bweight.requires_grad_(False)
    return model


def _predict_entry(entry: Any, xc: Any, scf_options: dict) -> tuple[float, str | None]:
    """(prediction, None), or (nan, why) if the entry's SCF fails."""
    torch = _torch()
    from .deepchem import EntryError
    from .errors import SolidXCError
    try:
        with torch.no_grad():
            qcs = entry.run(xc, **scf_options)
            value = (float(entry.get_val(qcs).reshape(-1)[0]) if entry.entry_type != "dens"
                     else float(entry.prediction(qcs)))
        return value, None
    except (EntryError, SolidXCError) as exc:
        return float("nan"), str(exc)


def _die_with_parent() -> None:
    """Worker initializer (Linux): the kernel sends SIGTERM to the worker when the trainer dies, so
    a trainer killed during its evaluation leaves no worker computing SCFs for nobody."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers exit at their next task instead
        pass


def _worker_predict(dataset: str, index: int, spec: dict, scf_options: dict) -> tuple[float, str | None]:
    """One entry's prediction in a worker process: the dataset is re-read (entries hold core handles,
    which do not cross processes) and the functional rebuilt from ``spec``."""
    torch = _torch()
    from .deepchem import DFTYamlLoader
    entry = DFTYamlLoader.load_entries(dataset)[index]
    if spec["kind"] == "pbe":
        xc = "pbe"
    else:
        model = build_model(spec["network"], spec["hidden"])
        model.load_state_dict(spec["state"])
        model.eval()
        xc = model.hybridxc
    torch.manual_seed(0)
    return _predict_entry(entry, xc, scf_options)


def _ridge(a: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """argmin_d |r + a d|^2 + lam |d|^2, through the SVD of ``a`` (stable for any rank)."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return -vt.T @ ((s / (s * s + lam)) * (u.T @ r))


def levenberg_marquardt_step(jacobian: Any, residuals: Any, lambdas: Sequence[float] = GN_LAMBDAS,
                             max_change: float = GN_MAX_CHANGE,
                             max_parameter_step: float = GN_MAX_PARAMETER_STEP) -> dict:
    """One damped Gauss-Newton step for the training loss mean_i r_i^2, from the residuals r_i of
    the training entries and their gradients J_i = dr_i/dtheta (rows of ``jacobian``).

    The step d minimises |r + J d|^2 + lam s^2 |d|^2, s the largest singular value of J (so lam is
    dimensionless; Levenberg's damping, not Marquardt's column scaling, which lets parameters the
    data barely sees take huge steps that the linear model does not describe). lam is chosen by
    leave-one-out cross-validation on the training entries: for each lam, each entry's residual is
    predicted by the step fitted without it, and the lam with the smallest mean squared prediction
    wins; if no lam beats taking no step, no step is taken. The linear model holds only near the
    current parameters, so lam is then raised until no entry's residual is predicted to move by more
    than ``max_change`` and no parameter by more than ``max_parameter_step`` (a trust region; lam
    grows by 10^(1/8) at a time; if even 1e8 times the chosen lam exceeds it, that step is scaled
    down to fit).

    Returns ``step`` (per parameter), ``lambda`` (None: no step), ``cv`` (lam -> leave-one-out mean
    squared residual), ``cv_no_step`` (mean r^2), ``predicted`` (r + J d) and ``damped`` (whether the
    trust region raised lam)."""
    jac = np.asarray(jacobian, dtype=float)
    r = np.asarray(residuals, dtype=float).reshape(-1)
    if jac.ndim != 2 or jac.shape[0] != r.size:
        raise ValueError(f"jacobian must be (entries, parameters) = ({r.size}, ...), got {jac.shape}")
    if not (np.isfinite(jac).all() and np.isfinite(r).all()):
        raise ValueError("the Jacobian and the residuals must be finite")
    n = r.size
    top = float(np.linalg.norm(jac, 2)) if jac.size else 0.0
    scaled = jac / top if top > 0 else jac
    no_step = float(np.mean(r * r)) if n else 0.0
    result = {"step": np.zeros(jac.shape[1]), "lambda": None, "cv": {}, "cv_no_step": no_step,
              "predicted": r.copy(), "damped": False}
    if n < 2 or top == 0:
        return result
    for lam in lambdas:
        errors = []
        for i in range(n):
            keep = np.arange(n) != i
            d = _ridge(scaled[keep], r[keep], lam)
            errors.append(r[i] + scaled[i] @ d)
        result["cv"][float(lam)] = float(np.mean(np.square(errors)))
    best = min(result["cv"], key=result["cv"].get)
    if result["cv"][best] >= no_step:
        return result
    chosen = None
    def excess(d: np.ndarray) -> float:  # > 1: outside the trust region
        return max(np.abs(scaled @ d).max() / max_change, np.abs(d / top).max() / max_parameter_step)

    for lam in best * 10.0 ** (np.arange(0, 65) / 8):  # from the chosen lam up, 8 per decade
        d = _ridge(scaled, r, lam)
        if excess(d) <= 1:
            chosen = (float(lam), d)
            break
        result["damped"] = True
    if chosen is None:  # even 1e8 times the damping moves too far: scale that step down
        d = _ridge(scaled, r, lam)
        d /= excess(d)
        chosen = (float(lam), d)
    lam, d = chosen
    result["lambda"] = float(lam)
    result["step"] = d / top
    result["predicted"] = r + scaled @ d
    return result


def _entry_gradient(model: Any, entry: Any) -> tuple[float, np.ndarray | None, str | None]:
    """(prediction, d prediction / d parameters over the trainable ones, None), or (nan, None, why)
    if the entry's SCF or its backward pass fails (``model`` skips failures and logs them)."""
    torch = _torch()
    params = [p for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    before = model.failures
    prediction = model(entry).reshape(-1)[0]
    if model.failures == before and prediction.requires_grad and torch.isfinite(prediction):
        prediction.backward()
    if model.failures != before or not prediction.requires_grad or not torch.isfinite(prediction):
        why = model.failure_log[-1] if model.failure_log else "no gradient"
        return float("nan"), None, why
    grad = np.concatenate([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).numpy()
                           for p in params])
    return float(prediction.detach()), grad, None


def _worker_gradient(dataset: str, index: int, spec: dict, scf_options: dict) -> tuple[float, Any, str | None]:
    """``_entry_gradient`` of one entry in a worker process (see ``_worker_predict``)."""
    torch = _torch()
    from .deepchem import DFTYamlLoader
    entry = DFTYamlLoader.load_entries(dataset)[index]
    model = build_model(spec["network"], spec["hidden"], "skip", scf_options)
    model.load_state_dict(spec["state"])
    model.train()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the failure is returned and warned about by the trainer
        return _entry_gradient(model, entry)


class Trainer:
    """The training loop behind ``solidxc train`` (usable from Python too)."""

    def __init__(self, entries: Sequence[Any], out: str, *, epochs: int = 5, learning_rate: float = 5e-3,
                 batch_size: int = 1, hidden: int = 10, seed: int = 0, threads: int | None = None,
                 tol: float = 1e-9, on_failure: str = "skip", progress: bool = True, network: str = "gradient",
                 jobs: int = 1, dataset: str | None = None, targets: str = "auto", optimizer: str = "adam",
                 validation: Sequence[str] = ()):
        torch = _torch()
        self.entries = list(entries)
        training = [e for e in self.entries if e.split == "train"]
        validation = [str(name).strip() for name in validation if str(name).strip()]
        names = [e.name for e in training]
        unknown = [name for name in validation if name not in names]
        if unknown:
            raise SystemExit(f"solidxc train: --validation: {', '.join(map(repr, unknown))} is not the name of a "
                             f"training entry (training entries: {', '.join(names)})")
        #: Training entries the optimiser fits, and those it leaves out to choose the network's weight
        #: (``--validation``; see ``choose_shrinkage``). Both are the dataset's training split.
        self.train = [e for e in training if e.name not in validation]
        self.validation = [e for e in training if e.name in validation]
        #: The whole training split, fitted entries first: ``self.targets`` is in this order.
        self.training = self.train + self.validation
        self.test = [e for e in self.entries if e.split != "train"]
        if not training:
            raise SystemExit("solidxc train: the dataset has no training entries (split: train)")
        if not self.train:
            raise SystemExit("solidxc train: --validation names every training entry; none is left to fit")
        if targets not in TARGETS:
            raise SystemExit(f"solidxc train: --targets must be one of {', '.join(TARGETS)}, got {targets!r}")
        references = [pbe_reference(e) for e in self.training]
        if targets == "auto":
            targets = "pseudo-corrected" if all(r is not None for r in references) else "experiment"
        elif targets == "pseudo-corrected" and any(r is None for r in references):
            missing = [e.name for e, r in zip(self.training, references) if r is None]
            raise SystemExit(f"solidxc train: --targets pseudo-corrected needs pbe_reference_angstrom in every "
                             f"training entry; missing in {', '.join(missing)}")
        self.target_mode = targets
        if optimizer not in OPTIMIZERS:
            raise SystemExit(f"solidxc train: --optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        #: How this run's epochs step (each epoch's record names its method; a run may switch).
        self.optimizer_kind = optimizer
        #: Targets by entry index in ``self.training`` (None: the label); set by ``prepare_targets``.
        self.targets: list[float | None] = [None] * len(training)
        self.out = out
        self.epochs = epochs
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.seed = seed
        os.makedirs(out, exist_ok=True)
        torch.manual_seed(seed)
        scf_options = {"tol": tol}
        if threads is not None:
            scf_options["threads"] = threads
        self.network, self.hidden = network, hidden
        self.model = build_model(network, hidden, on_failure, scf_options)
        #: Evaluation processes (``--jobs``); they need the dataset's path to re-read the entries.
        self.jobs = max(1, int(jobs)) if dataset is not None else 1
        self.dataset = dataset
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.checkpoint = os.path.join(out, "checkpoint.pt")
        self.previous_checkpoint = os.path.join(out, "checkpoint.prev.pt")
        self.resumed_from: str | None = None
        #: Set by ``check_last_step`` when the evaluation uses the parameters before the last step.
        self.rolled_back: dict | None = None
        #: Set by ``choose_shrinkage``: the validation loss of each factor t and the one chosen.
        self.shrinkage: dict | None = None
        #: What a checkpoint must have been written with to be resumed (--epochs may differ).
        self.settings = {"network": network, "hidden": hidden, "learning_rate": learning_rate, "batch_size": self.batch_size,
                         "seed": seed, "tol": tol, "targets": self.target_mode,
                         "train_entries": _fingerprint(self.train, references=self.target_mode != "experiment"),
                         "validation": sorted(e.name for e in self.validation)}
        self._continuing = False  # True once this run's lineage owns checkpoint.pt (resumed or saved)
        self._lock = self._acquire_lock()
        self._remove_temporaries()

    # -- output directory ----------------------------------------------------------------------
    def _acquire_lock(self) -> Any:
        """Holds ``train.lock`` for the trainer's lifetime: two runs in one directory would overwrite
        each other's checkpoints. The kernel drops the lock when the process dies, even by SIGKILL."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return None
        handle = open(os.path.join(self.out, "train.lock"), "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise CheckpointError(f"{self.out} is in use by another solidxc train (pid {owner}); "
                                  "wait for it to finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def _remove_temporaries(self) -> None:
        """Temporary files left by a run killed while writing: incomplete, never read, removed."""
        for name in os.listdir(self.out):
            if any(name.startswith(f"{output}.tmp") for output in OUTPUTS):
                os.remove(os.path.join(self.out, name))

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, epoch: int) -> None:
        """Checkpoint after ``epoch`` (0-based) finished; the checkpoint it replaces becomes
        ``checkpoint.prev.pt`` (a fresh run first drops a previous run's one)."""
        torch = _torch()
        if not self._continuing and os.path.exists(self.previous_checkpoint):
            os.remove(self.previous_checkpoint)
        _atomic_save({"epoch": epoch, "settings": self.settings,
                      "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                      "history": self.history, "failures": self.model.failures,
                      "failure_log": list(self.model.failure_log),
                      "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}},
                     self.checkpoint, keep_previous=self.previous_checkpoint if self._continuing else None)
        self._continuing = True

    @staticmethod
    def _read(path: str) -> dict:
        """The checkpoint at ``path``; ValueError naming what is wrong if it cannot be read."""
        torch = _torch()
        try:
            data = torch.load(path, weights_only=False, map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... on a torn file
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValueError(f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__) from None
        missing = [k for k in ("epoch", "model", "optimizer", "history", "rng") if not isinstance(data, dict) or k not in data]
        if missing:
            raise ValueError(f"not a solidxc train checkpoint (no {', '.join(missing)})")
        return data

    def resume(self) -> bool:
        """Loads the newest readable checkpoint; False if there is none. An unreadable
        ``checkpoint.pt`` (moved to ``checkpoint.pt.corrupt``) falls back to ``checkpoint.prev.pt``
        with a warning. CheckpointError if no checkpoint can be read or if it was written with other
        settings."""
        torch = _torch()
        problems = []
        for path in (self.checkpoint, self.previous_checkpoint):
            if not os.path.exists(path):
                continue
            try:
                data = self._read(path)
            except ValueError as exc:
                problems.append((path, str(exc)))
                continue
            break
        else:
            if not problems:
                return False
            listed = "; ".join(f"{path} is unreadable ({reason})" for path, reason in problems)
            raise CheckpointError(f"cannot resume: {listed}. Remove it or pass --restart to start again")
        self._check_settings(path, data.get("settings"))
        try:
            self.model.load_state_dict(data["model"])
            self.optimizer.load_state_dict(data["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"cannot resume from {path}: its model does not fit this run "
                                  f"({str(exc).splitlines()[0]}); pass --restart to start again") from None
        for bad, reason in problems:
            os.replace(bad, f"{bad}.corrupt")
            warnings.warn(f"solidxc train: {bad} is unreadable ({reason}); kept as {bad}.corrupt, resuming from "
                          f"{path} (epoch {int(data['epoch']) + 1})", RuntimeWarning)
        self.history = list(data["history"])
        self.model.failures = int(data.get("failures", 0))
        self.model.failure_log = list(data.get("failure_log", []))
        torch.set_rng_state(data["rng"]["torch"])
        np.random.set_state(data["rng"]["numpy"])
        random.setstate(data["rng"]["python"])
        self.start_epoch = int(data["epoch"]) + 1
        self.resumed_from = path
        self._continuing = True
        return True

    def _check_settings(self, path: str, saved: dict | None) -> None:
        if saved is None:  # written before checkpoints recorded their settings
            return
        # written before --network (DeepChem's NNPBE) or --targets (experiment) existed
        saved = {"network": "nnpbe", "targets": "experiment", "validation": [], **saved}
        options = {"validation": "--validation", "targets": "--targets", "network": "--network", "hidden": "--hidden", "learning_rate": "--lr", "batch_size": "--batch-size", "seed": "--seed",
                   "tol": "the SCF tolerance", "train_entries": "the training entries"}
        for key, option in options.items():
            if key in saved and saved[key] != self.settings[key]:
                if key == "train_entries":
                    detail = "the training entries of the dataset differ"
                else:
                    shown = [", ".join(v) or "none" if isinstance(v, list) else v for v in (saved[key], self.settings[key])]
                    detail = f"{option} {shown[0]} there, {shown[1]} now"
                raise CheckpointError(f"cannot resume from {path}: it was written by a run with other settings "
                                      f"({detail}); use the same settings, or pass --restart to start again")

    # -- training ------------------------------------------------------------------------------
    def prepare_targets(self) -> None:
        """With pseudo-corrected targets: PBE on every entry first (held-out first, cached, in ``jobs``
        processes), then t_i = y_i + (PBE_i - PBE_i^ref) for the training entries, printed. An entry
        whose PBE scan fails stops the run (its target would be unknown)."""
        if self.target_mode != "pseudo-corrected":
            return
        pbe = self.predict("pbe")
        index = {id(e): i for i, e in enumerate(self.entries)}
        rows = []
        for k, entry in enumerate(self.training):
            p = pbe[index[id(entry)]]
            if not np.isfinite(p):
                raise SystemExit(f"solidxc train: entry {entry.name!r}: its PBE scan failed, so its pseudo-corrected "
                                 f"target is unknown; fix the entry or use --targets experiment")
            y = float(entry.label().reshape(-1)[0])
            shift = p - pbe_reference(entry)
            self.targets[k] = y + shift
            rows.append(f"{entry.name} {100 * shift / y:+.2f}")
        print("solidxc train: pseudo-corrected targets, pseudopotential error of PBE a0 (%): " + ", ".join(rows),
              flush=True)

    def _bar(self, total: int, desc: str):
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=total, desc=desc, unit="entry", leave=False)

    def epoch(self, epoch: int) -> dict:
        torch = _torch()
        self.model.train()
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.train))
        losses, batch_names = [], []
        failures_before = self.model.failures
        bar = self._bar(len(order), f"epoch {epoch + 1}/{self.epochs}")
        start = time.perf_counter()
        batches = -(-len(order) // self.batch_size)
        for number, first in enumerate(range(0, len(order), self.batch_size), 1):
            indices = order[first:first + self.batch_size]
            batch = [self.train[i] for i in indices]
            self.optimizer.zero_grad()
            terms = []
            for i, entry in zip(indices, batch):
                prediction = self.model(entry)
                if torch.isfinite(prediction).all() and prediction.requires_grad:
                    terms.append(entry_loss_term(entry, prediction, self.targets[i]))
                if bar is not None:
                    bar.update(1)
            if terms:
                loss = torch.stack(terms).mean()
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
                batch_names.append([entry.name for entry in batch])
                if bar is not None:
                    bar.set_postfix(loss=f"{losses[-1]:.4g}", a=f"{float(self.model.hybridxc.aweight.detach()):.4f}",
                                    b=f"{float(self.model.hybridxc.bweight.detach()):.4f}")
            if bar is None:  # logs without bars still show where a long epoch is
                print(f"epoch {epoch + 1}/{self.epochs}: batch {number}/{batches}, "
                      + (f"loss {losses[-1]:.6g}" if terms else "no entry succeeded, no step"), flush=True)
        if bar is not None:
            bar.close()
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else float("nan"),
                  "batch_losses": losses, "batch_entries": batch_names,
                  "skipped": self.model.failures - failures_before, "seconds": time.perf_counter() - start,
                  "aweight": float(self.model.hybridxc.aweight.detach()), "bweight": float(self.model.hybridxc.bweight.detach())}
        return record

    def _residual_scale(self, entry: Any) -> float:
        """d(residual)/d(prediction): the loss term is residual^2 (see ``entry_loss_term``)."""
        w = float(np.sqrt(max(float(entry.get_weight()), 0.0)))
        if entry.entry_type == "lattice":
            return w * 100.0 / float(np.asarray(entry.label(), dtype=float).reshape(-1)[0])
        return w

    def gradients(self) -> list[tuple[float, np.ndarray | None, str | None]]:
        """(prediction, gradient, error) of every training entry at the current parameters, in
        ``jobs`` worker processes when there are several."""
        bar = self._bar(len(self.train), "gradients")
        out: list = [None] * len(self.train)
        if self.jobs > 1 and len(self.train) > 1:
            _, spec = self._functional("trained")
            index = {id(e): i for i, e in enumerate(self.entries)}
            position = {index[id(e)]: k for k, e in enumerate(self.train)}
            for i, result in self._in_workers(_worker_gradient, list(position), spec):
                k = position[i]
                out[k] = result
                if out[k][2] is not None:
                    self.model.failures += 1
                    self.model.failure_log.append(f"{self.train[k].name}: {out[k][2]}")
                    warnings.warn(f"solidxc: skipping entry {self.train[k].name!r}: {out[k][2]}", RuntimeWarning)
                if bar is not None:
                    bar.update(1)
                else:
                    print(f"gradients: {self.train[k].name} done", flush=True)
        else:
            self.model.train()
            for k, entry in enumerate(self.train):
                out[k] = _entry_gradient(self.model, entry)
                if bar is not None:
                    bar.update(1)
                else:
                    print(f"gradients: {entry.name} done", flush=True)
        if bar is not None:
            bar.close()
        return out

    def _in_workers(self, worker: Any, indices: Sequence[int], spec: dict):
        """``worker(dataset, i, spec, options)`` for each entry index i, in ``jobs`` spawned processes
        (one SCF thread each unless --threads is given); yields (i, result) as they finish."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        options = dict(self.model.scf_options)
        options.setdefault("threads", 1)
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(indices)), initializer=_die_with_parent,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(worker, self.dataset, i, spec, options): i for i in indices}
            for future in as_completed(futures):
                yield futures[future], future.result()

    def _trainable(self) -> list:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _parameter_vector(self) -> np.ndarray:
        return np.concatenate([p.detach().reshape(-1).numpy().copy() for p in self._trainable()])

    def _set_parameter_vector(self, vector: np.ndarray) -> None:
        torch = _torch()
        with torch.no_grad():
            offset = 0
            for p in self._trainable():
                size = p.numel()
                p.copy_(torch.from_numpy(np.asarray(vector[offset:offset + size], dtype=float).reshape(p.shape)))
                offset += size

    def _residual(self, k: int, value: float) -> float:
        """The loss residual of ``self.training[k]``'s prediction ``value`` (its loss term squared)."""
        entry = self.training[k]
        target = self.targets[k] if self.targets[k] is not None else float(np.asarray(entry.label()).reshape(-1)[0])
        return self._residual_scale(entry) * (value - target)

    def _terms(self, results: Sequence[tuple]) -> tuple[list, list, list, list]:
        """(names, residuals, loss terms, Jacobian rows) of the training entries that succeeded in
        ``results`` ((prediction, gradient or None, error) per training entry)."""
        names, residuals, losses, rows = [], [], [], []
        for k, (entry, (value, grad, error)) in enumerate(zip(self.train, results)):
            if error is not None or not np.isfinite(value):
                continue
            residuals.append(self._residual(k, value))
            rows.append(None if grad is None else self._residual_scale(entry) * grad)
            names.append([entry.name])
            losses.append(residuals[-1] ** 2)
        return names, residuals, losses, rows

    @staticmethod
    def _start_losses(step: dict) -> dict:
        """Entry name -> loss term where the Gauss-Newton step recorded in ``step`` started (records
        written before base_losses existed: the epoch's own losses, the same point then)."""
        return step.get("base_losses") or dict(zip((n[0] for n in step["batch_entries"]), step["batch_losses"]))

    @staticmethod
    def _raised(step: dict, names: list, losses: list) -> bool:
        """Whether the Gauss-Newton step recorded in ``step`` raised the training loss, judged on the
        entries that succeeded both before it and now (``names``, ``losses`` after it)."""
        before = Trainer._start_losses(step)
        common = [i for i, n in enumerate(names) if n[0] in before]
        return bool(common) and (np.mean([losses[i] for i in common]) > np.mean([before[names[i][0]] for i in common]))

    def _cached_training(self) -> list[tuple] | None:
        """Every training entry's prediction at the current parameters, if the cache (``predictions.json``)
        holds them all, as (prediction, None, None); else None."""
        cache = self._read_cache()
        values = [cache.get(key) for key in self._prediction_keys("trained", self.train)]
        if all(isinstance(v, (int, float)) for v in values):
            return [(float(v), None, None) for v in values]
        return None

    def _store_predictions(self, entries: Sequence[Any], values: Sequence[float]) -> None:
        """Puts predictions at the current parameters into the cache (finite ones only)."""
        cache = self._read_cache()
        for key, value in zip(self._prediction_keys("trained", entries), values):
            if np.isfinite(value):
                cache[key] = float(value)
        _atomic_text(json.dumps(cache, indent=0, sort_keys=True), os.path.join(self.out, "predictions.json"))

    def gauss_newton_epoch(self, epoch: int) -> dict:
        """One Levenberg-Marquardt step on all training entries at once (``levenberg_marquardt_step``):
        every entry's prediction and gradient at the current parameters, then the step the
        leave-one-out cross-validation picks, inside a trust region. If the previous epoch's step
        raised the training loss (this epoch's predictions show it), that step is undone and
        re-taken from its stored Jacobian with the trust region halved; if it was held back by the
        trust region and delivered at least 3/4 of its predicted fall, the trust region doubles.
        When the cache already holds every training prediction at the current parameters (a final
        evaluation ran there) and they show the previous step raised the loss, no gradients are
        computed: the step is undone from those. An entry that fails is left out of the step, counted."""
        start = time.perf_counter()
        failures_before = self.model.failures
        previous = self.history[-1] if self.history and self.history[-1].get("method") == "gauss-newton" else None
        stepped = previous is not None and previous.get("lambda") is not None
        results = self._cached_training() if stepped and "parameters" in previous else None
        if results is not None:
            cached_names, _, cached_losses, _ = self._terms(results)
        if results is None or not self._raised(previous, cached_names, cached_losses):
            results = self.gradients()
            self._store_predictions(self.train, [value for value, _, _ in results])
        names, residuals, losses, rows = self._terms(results)
        if not names:
            raise SystemExit("solidxc train: every training entry failed in this Gauss-Newton epoch; nothing to fit")
        jac, res, step_names = (np.array(rows), np.array(residuals), names) if rows[0] is not None else (None, None, names)
        base = {n[0]: loss for n, loss in zip(names, losses)}  # the loss terms where the step starts
        radius, rejected = GN_MAX_PARAMETER_STEP, False
        if stepped:
            radius = float(previous.get("radius", GN_MAX_PARAMETER_STEP))
            before = self._start_losses(previous)
            common = [i for i, n in enumerate(names) if n[0] in before]
            worse = self._raised(previous, names, losses)
            if worse and "parameters" in previous:
                self._set_parameter_vector(np.array(previous["parameters"]))
                jac, res = np.array(previous["jacobian"]), np.array(previous["residuals"])
                step_names, base = previous["step_entries"], previous["base_losses"]
                radius, rejected = radius / 2, True
            elif worse:
                warnings.warn("solidxc train: the previous Gauss-Newton step raised the training loss, but its "
                              "checkpoint holds no Jacobian to re-take it from; continuing from here", RuntimeWarning)
            elif common and previous.get("damped"):
                # Accepted, and held back by the trust region: if the loss fell by at least 3/4 of what
                # the linear model predicted, the model is trusted twice as far (up to GN_MAX_GROWTH).
                predicted = previous["predicted_residuals"]
                was = np.mean([before[names[i][0]] for i in common])
                gain = was - np.mean([losses[i] for i in common])
                promised = was - np.mean([predicted[names[i][0]] ** 2 for i in common])
                if promised > 0 and gain >= 0.75 * promised:
                    radius = min(2 * radius, GN_MAX_GROWTH * GN_MAX_PARAMETER_STEP)
        theta = self._parameter_vector()
        shrink = radius / GN_MAX_PARAMETER_STEP
        fit = levenberg_marquardt_step(jac, res, max_change=GN_MAX_CHANGE * shrink, max_parameter_step=radius)
        self._set_parameter_vector(theta + fit["step"])
        return {"epoch": epoch + 1, "method": "gauss-newton", "loss": float(np.mean(losses)),
                "batch_losses": losses, "batch_entries": names,
                "skipped": self.model.failures - failures_before, "seconds": time.perf_counter() - start,
                "aweight": float(self.model.hybridxc.aweight.detach()), "bweight": float(self.model.hybridxc.bweight.detach()),
                "rejected_previous": rejected, "radius": radius,
                "lambda": fit["lambda"], "cv_loss": min(fit["cv"].values()) if fit["cv"] else None,
                "cv_no_step": fit["cv_no_step"], "damped": fit["damped"],
                "predicted_loss": float(np.mean(np.square(fit["predicted"]))),
                "predicted_residuals": {n[0]: float(x) for n, x in zip(step_names, fit["predicted"])},
                "step_norm": float(np.linalg.norm(fit["step"])),
                # what a later epoch needs to undo and re-take this step
                "parameters": theta.tolist(), "jacobian": jac.tolist(), "residuals": res.tolist(),
                "step_entries": step_names, "base_losses": base}

    def fit(self) -> None:
        for epoch in range(self.start_epoch, self.epochs):
            if self.optimizer_kind == "gauss-newton":
                record = self.gauss_newton_epoch(epoch)
                self.history.append(record)
                self.save(epoch)
                undone = ("the previous step raised the training loss: undone, re-taken with the trust region "
                          f"halved to {record['radius']:.3g}; " if record["rejected_previous"] else "")
                chosen = undone + ("no step (no damping beats it in cross-validation)" if record["lambda"] is None else
                          f"lambda {record['lambda']:.3g}{' (trust region)' if record['damped'] else ''}, "
                          f"leave-one-out loss {record['cv_loss']:.4g}, predicted loss after the step "
                          f"{record['predicted_loss']:.4g}")
                print(f"epoch {record['epoch']}/{self.epochs} (Gauss-Newton): loss {record['loss']:.6g} before the "
                      f"step; {chosen}; a = {record['aweight']:.5f}, skipped {record['skipped']}, "
                      f"{record['seconds']:.1f} s", flush=True)
                continue
            record = self.epoch(epoch)
            self.history.append(record)
            self.save(epoch)
            print(f"epoch {record['epoch']}/{self.epochs}: loss {record['loss']:.6g} (% error squared for lattice "
                  f"entries), a = {record['aweight']:.5f}, b = {record['bweight']:.5f}, skipped {record['skipped']}, "
                  f"{record['seconds']:.1f} s", flush=True)

    # -- evaluation ----------------------------------------------------------------------------
    def _functional(self, kind: str) -> tuple[str, dict]:
        """(cache key, worker spec) of ``kind`` "pbe" or "trained" (the model's current parameters)."""
        if kind == "pbe":
            return "pbe", {"kind": "pbe"}
        import hashlib
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        digest = hashlib.sha256(f"{self.network}/{self.hidden}".encode())
        for name in sorted(state):
            digest.update(name.encode())
            digest.update(state[name].to(_torch().float64).contiguous().numpy().tobytes())
        return f"trained-{digest.hexdigest()[:24]}", {"kind": "trained", "network": self.network,
                                                       "hidden": self.hidden, "state": state}

    def _read_cache(self) -> dict:
        path = os.path.join(self.out, "predictions.json")
        try:
            with open(path) as f:
                cache = json.load(f)
            return cache if isinstance(cache, dict) else {}
        except (OSError, ValueError):
            return {}

    def _prediction_keys(self, kind: str, entries: Sequence[Any]) -> list[str]:
        """Cache keys of ``entries``' predictions with ``kind`` ("pbe", or "trained" at the current parameters)."""
        fkey, _ = self._functional(kind)
        return [f"{fkey}|{_fingerprint([e], references=False)}|tol={self.settings['tol']:g}" for e in entries]

    def predict(self, kind: str, only: Sequence[Any] | None = None) -> list[float]:
        """Every entry's prediction with PBE (``kind="pbe"``) or the trained functional, held-out entries
        first (with ``only``, only those entries are computed; the others are nan unless cached). Each
        finished entry is stored at once in ``predictions.json`` (keyed by the functional's
        parameters, the entry's definition and the SCF tolerance), so an interrupted evaluation resumes
        where it stopped and PBE is computed once per dataset. With ``jobs`` > 1 the entries run in that
        many worker processes (one SCF thread each unless --threads is given)."""
        _, spec = self._functional(kind)
        label = "PBE" if kind == "pbe" else "trained"
        keys = self._prediction_keys(kind, self.entries)
        cache = self._read_cache()
        chosen = None if only is None else {id(e) for e in only}
        todo = [i for i, key in enumerate(keys) if not isinstance(cache.get(key), (int, float))
                and (chosen is None or id(self.entries[i]) in chosen)]
        todo.sort(key=lambda i: self.entries[i].split == "train")  # held-out first: the numbers that matter
        done = len(keys) - len(todo)
        bar = self._bar(len(todo), label)

        def store(i: int, value: float, error: str | None) -> None:
            nonlocal done
            done += 1
            entry = self.entries[i]
            if error is not None:
                warnings.warn(f"solidxc train: {label}: entry {entry.name!r} failed: {error}", RuntimeWarning)
            else:
                cache[keys[i]] = value
                _atomic_text(json.dumps(cache, indent=0, sort_keys=True), os.path.join(self.out, "predictions.json"))
            if bar is not None:
                bar.update(1)
            else:
                shown = value * BOHR_IN_ANGSTROM if entry.entry_type == "lattice" else value
                unit = " Å" if entry.entry_type == "lattice" else ""
                print(f"{label}: {entry.name} ({entry.split}) {shown:.5f}{unit} [{done}/{len(keys)}]", flush=True)

        if self.jobs > 1 and len(todo) > 1:
            for i, result in self._in_workers(_worker_predict, todo, spec):
                store(i, *result)
        else:
            xc = "pbe" if kind == "pbe" else self.model.hybridxc
            for i in todo:
                store(i, *_predict_entry(self.entries[i], xc, self.model.scf_options))
        if bar is not None:
            bar.close()
        return [float(cache[key]) if isinstance(cache.get(key), (int, float)) else float("nan") for key in keys]

    def check_last_step(self) -> bool:
        """Before the final evaluation: if the last epoch was a Gauss-Newton step, the training entries'
        predictions after it show whether it raised the training loss. If it did, the parameters go back
        to where it started (their predictions are cached by its gradient pass) and the evaluation
        reports those; the checkpoint keeps the step, so a longer run undoes and re-takes it. Only the
        training set decides. True if the step was rolled back."""
        last = self.history[-1] if self.history else None
        if not last or last.get("method") != "gauss-newton" or last.get("lambda") is None or "parameters" not in last:
            return False
        self.model.eval()
        values = self.predict("trained", only=self.train)
        index = {id(e): i for i, e in enumerate(self.entries)}
        names, _, losses, _ = self._terms([(values[index[id(e)]], None, None) for e in self.train])
        if not self._raised(last, names, losses):
            return False
        after = float(np.mean(losses))
        # Where the step started (after an undone step, that is the earlier point, not this epoch's "loss").
        before = float(np.mean(list(self._start_losses(last).values())))
        self._set_parameter_vector(np.array(last["parameters"]))
        self.rolled_back = {"epoch": last["epoch"], "loss_before": before, "loss_after": after}
        print(f"solidxc train: epoch {last['epoch']}'s step raised the training loss ({before:.6g} -> "
              f"{after:.6g}); evaluating the parameters it started from", flush=True)
        return True

    def choose_shrinkage(self) -> float | None:
        """With ``--validation``: the network's weight a is scaled by the factor t of ``SHRINK_FACTORS``
        whose functional, PBE + t a NN, has the smallest loss on the validation entries (the training
        loss's terms and targets, on entries the optimiser did not fit; t = 0 is PBE itself, so a
        network that does not generalise to them is switched off). Ties go to the smaller t. Like
        stopping early on a validation set, but along the line from the base to the trained
        functional, which one Adam epoch or one Gauss-Newton step cannot be stopped on. The factor is
        applied to the model (not to the checkpoint, which keeps the trained a). Only the training
        split decides; the held-out entries are not computed here. Returns t (None without validation
        entries)."""
        if not self.validation:
            return None
        torch = _torch()
        self.model.eval()
        weight = self.model.hybridxc.aweight
        trained = float(weight.detach())
        index = {id(e): i for i, e in enumerate(self.entries)}
        pbe = self.predict("pbe", only=self.validation)
        losses, errors = [], []
        for t in SHRINK_FACTORS:
            with torch.no_grad():
                weight.fill_(t * trained)
            values = pbe if t == 0 else self.predict("trained", only=self.validation)
            terms = []
            for k, entry in enumerate(self.validation, start=len(self.train)):
                value = values[index[id(entry)]]
                terms.append(self._residual(k, value) ** 2 if np.isfinite(value) else np.nan)
            losses.append(float(np.mean(terms)) if np.isfinite(terms).all() else float("nan"))
            errors.append(terms)
            print(f"solidxc train: validation, a = {t:g} x {trained:.5f}: loss {losses[-1]:.6g}", flush=True)
        if not np.isfinite(losses).any():
            raise SystemExit("solidxc train: --validation: every validation entry failed at every factor; "
                             "nothing to choose from")
        best = int(np.nanargmin(losses))
        with torch.no_grad():
            weight.fill_(SHRINK_FACTORS[best] * trained)
        self.shrinkage = {"factors": list(SHRINK_FACTORS), "losses": losses, "terms": errors,
                          "entries": [e.name for e in self.validation], "chosen": SHRINK_FACTORS[best],
                          "trained_aweight": trained}
        print(f"solidxc train: validation chose a = {SHRINK_FACTORS[best]:g} x {trained:.5f} "
              f"(loss {losses[best]:.6g}; PBE {losses[0]:.6g}, trained {losses[-1]:.6g})", flush=True)
        return SHRINK_FACTORS[best]

    def _split(self, entry: Any) -> str:
        """The split a result row names: ``validation`` for the training entries left out of the fit."""
        return "validation" if any(entry is e for e in self.validation) else entry.split

    def report(self) -> str:
        self.model.eval()
        pbe = self.predict("pbe")
        trained = self.predict("trained")
        rows = []
        for entry, p, t in zip(self.entries, pbe, trained):
            y = float(entry.label().reshape(-1)[0])
            lattice = entry.entry_type == "lattice"
            scale = BOHR_IN_ANGSTROM if lattice else 1.0
            rows.append({"name": entry.name, "split": self._split(entry), "type": entry.entry_type,
                         "unit": "angstrom" if lattice else "atomic",
                         "experiment": y * scale, "pbe": p * scale, "trained": t * scale,
                         "pbe_error_percent": 100 * (p - y) / y if y else float("nan"),
                         "trained_error_percent": 100 * (t - y) / y if y else float("nan")})
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        _atomic_text(table.getvalue(), os.path.join(self.out, "results.csv"))
        text = self.markdown(rows)
        _atomic_text(text, os.path.join(self.out, "results.md"))
        self.plots(rows)
        return text

    def _target_error(self, row: dict, key: str) -> float:
        """Error (%) of ``row[key]`` ("pbe" or "trained") against the entry's training target,
        relative to experiment; for an entry without a corrected target, against experiment."""
        target = next((t for e, t in zip(self.training, self.targets) if e.name == row["name"]), None)
        if target is None or row["type"] != "lattice":
            return row[f"{key}_error_percent"]
        y = row["experiment"] / BOHR_IN_ANGSTROM
        return 100 * (row[key] / BOHR_IN_ANGSTROM - target) / y

    def markdown(self, rows: list[dict]) -> str:
        lines = ["# SolidXC training results", "",
                 f"HybridXC on {BASE} (e = a NN + b PBE, NN: {type(self.model.hybridxc.nnxc).__name__}): a = {float(self.model.hybridxc.aweight.detach()):.5f}, "
                 f"b = {float(self.model.hybridxc.bweight.detach()):.5f} after {len(self.history)} epochs; "
                 f"{self.model.failures} entry evaluations skipped during training.", "",
                 "| entry | split | type | experiment | PBE | trained | PBE error (%) | trained error (%) |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['name']} | {r['split']} | {r['type']} | {r['experiment']:.4f} | {r['pbe']:.4f} | "
                         f"{r['trained']:.4f} | {r['pbe_error_percent']:+.3f} | {r['trained_error_percent']:+.3f} |")
        lines.append("")
        groups = [("train", ("train",)), ("validation", ("validation",)), ("test", ("test",))]
        if self.validation:
            groups.insert(2, ("training split (train + validation)", ("train", "validation")))
        for label, splits in groups:
            chosen = [r for r in rows if r["split"] in splits and r["type"] == "lattice"]
            if chosen:
                mae = lambda key: np.nanmean([abs(r[key]) for r in chosen])
                lines.append(f"- {label}: mean absolute error of the lattice constants, PBE {mae('pbe_error_percent'):.3f} %, "
                             f"trained {mae('trained_error_percent'):.3f} % ({len(chosen)} solids)")
        if self.target_mode == "pseudo-corrected":
            for label, splits in groups[:3 if self.validation else 1]:
                chosen = [r for r in rows if r["split"] in splits and r["type"] == "lattice"]
                mae = lambda key: np.nanmean([abs(self._target_error(r, key)) for r in chosen])
                lines.append(f"- {label}, against the training targets (experiment + our PBE − the entry's "
                             f"pbe_reference_angstrom): PBE {mae('pbe'):.3f} %, trained {mae('trained'):.3f} %")
        lines.append("")
        if self.shrinkage:
            shrink = self.shrinkage
            lines.append(f"Validation ({', '.join(shrink['entries'])}, not fitted): the network's weight a = "
                         f"{shrink['trained_aweight']:.5f} after training was scaled by t = {shrink['chosen']:g}, the "
                         "factor with the smallest validation loss (mean squared % error against the targets):")
            lines.append("")
            lines.append("| t | " + " | ".join(f"{t:g}" for t in shrink["factors"]) + " |")
            lines.append("|---|" + "---|" * len(shrink["factors"]))
            lines.append("| validation loss | " + " | ".join(f"{v:.4g}" for v in shrink["losses"]) + " |")
            lines.append("")
        methods = [h.get("method", "adam") for h in self.history]
        if "gauss-newton" in methods:
            lines.append("Epochs: " + ", ".join(f"{h['epoch']} {h.get('method', 'adam')}" + (
                f" (training loss {h['loss']:.4g} before its step, predicted {h['predicted_loss']:.4g} after, "
                f"trust region {h['radius']:g})" if h.get("method") == "gauss-newton" else f" (mean loss {h['loss']:.4g})")
                for h in self.history) + ".")
            lines.append("")
        if self.rolled_back:
            lines.append(f"Evaluated at the parameters before epoch {self.rolled_back['epoch']}'s step: that step raised "
                         f"the training loss from {self.rolled_back['loss_before']:.4g} to "
                         f"{self.rolled_back['loss_after']:.4g} and is not used (the checkpoint keeps it; a longer run "
                         "undoes it and takes a shorter one).")
            lines.append("")
        lines.append(f"Training targets: {self.target_mode}. "
                     "Lattice constants in Å (experiment: zero-point corrected, see the dataset's sources).")
        return "\n".join(lines) + "\n"

    def plots(self, rows: list[dict]) -> None:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover
            return
        # Entries differ in how far PBE is from experiment, so the raw batch losses mostly show which
        # entry was drawn. Each step's loss over the same entries' PBE loss shows what the training
        # has done so far (1: no better than PBE); drawn beside them when the batches are known.
        # PBE's loss against the targets the training used (pseudo-corrected or experiment).
        # Adam takes a step per batch; a Gauss-Newton epoch evaluates every entry at the same
        # parameters and then takes one step.
        xlabel = ("batch (Adam: one step each; Gauss-Newton: one step per epoch)"
                  if any(h.get("method") == "gauss-newton" for h in self.history) else "optimiser step")
        pbe_terms = {r["name"]: self._target_error(r, "pbe") ** 2 for r in rows
                     if r["type"] == "lattice" and np.isfinite(r["pbe_error_percent"])}
        ratios = []
        for h in self.history:
            for value, names in zip(h.get("batch_losses", []), h.get("batch_entries", [])):
                base = np.mean([pbe_terms.get(n, np.nan) for n in names]) if names else np.nan
                ratios.append(value / base if base > 0 else np.nan)
        relative = bool(ratios) and bool(np.isfinite(ratios).any())
        fig, axes = plt.subplots(1, 2 if relative else 1, figsize=(11 if relative else 6, 3.8), squeeze=False)
        ax = axes[0][0]
        if relative:
            bx = axes[0][1]
            bx.plot(np.arange(1, len(ratios) + 1), ratios, ".-", color="C1", lw=0.8,
                    label="batch loss / its entries' PBE loss")
            bx.axhline(1, color="k", lw=0.8, ls="--")
            bx.set_yscale("log")
            bx.set_xlabel(xlabel)
            bx.set_ylabel("loss relative to PBE")
            bx.set_title("Relative to PBE on the same entries")
            bx.legend(fontsize=8)
        # Every optimiser step's batch loss (on the entries of that batch, with the parameters before
        # the step), and each epoch's mean at the epoch's end.
        steps, batch_losses, ends = [], [], []
        for h in self.history:
            for value in h.get("batch_losses", []):
                steps.append(len(steps) + 1)
                batch_losses.append(value)
            ends.append(len(steps))
        if batch_losses:
            ax.plot(steps, batch_losses, ".-", color="C0", alpha=0.6, lw=0.8, label="batch loss (before its step)")
            ax.set_xlabel(xlabel)
            ax.plot(ends, [h["loss"] for h in self.history], "o", color="C3", label="epoch mean")
            # The mean over the last epoch's worth of steps: every training entry once, whatever the order.
            window = len(self.history[0].get("batch_losses", []))
            if 2 <= window < len(batch_losses):
                running = np.convolve(batch_losses, np.ones(window) / window, mode="valid")
                ax.plot(steps[window - 1:], running, "-", color="k", lw=1.5, label=f"mean of the last {window} steps")
            # The training loss the evaluation found after the last step (every fitted training entry,
            # against the training targets): what the epoch means above cannot show.
            final = [self._target_error(r, "trained") ** 2 for r in rows
                     if r["split"] == "train" and r["type"] == "lattice" and np.isfinite(r["trained_error_percent"])]
            if final:
                label = ("after the last step (final evaluation)" if not self.shrinkage else
                         f"reported functional, a scaled by t = {self.shrinkage['chosen']:g} (final evaluation)")
                ax.plot([len(steps) + 1], [np.mean(final)], "*", color="C2", ms=12, label=label)
            ax.legend(fontsize=8)
        else:  # checkpoints written before batch losses were kept
            ax.plot([h["epoch"] for h in self.history], [h["loss"] for h in self.history], "o-")
            ax.set_xlabel("epoch")
        ax.set_ylabel("loss (% error squared)")
        ax.set_yscale("log")
        ax.set_title("SolidXC training curve")
        fig.tight_layout()
        _atomic_write(os.path.join(self.out, "training_curve.png"), lambda f: fig.savefig(f, format="png", dpi=120))
        plt.close(fig)
        lattice = [r for r in rows if r["type"] == "lattice"]
        if lattice:
            fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.5))
            exp = np.array([r["experiment"] for r in lattice])
            for key, marker, colour, label in (("pbe", "s", "C0", "PBE"), ("trained", "o", "C1", "trained")):
                for split, fill in (("train", 1.0), ("validation", 0.35), ("test", 0.0)):
                    sel = [i for i, r in enumerate(lattice) if r["split"] == split]
                    if sel:
                        face = matplotlib.colors.to_rgba(colour, fill) if fill else "none"
                        ax.scatter(exp[sel], [lattice[i][key] for i in sel], marker=marker, edgecolors=colour,
                                   facecolors=face, label=f"{label}, {split}")
            lo, hi = exp.min() * 0.97, exp.max() * 1.03
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xlabel("experiment a0 (Å)")
            ax.set_ylabel("computed a0 (Å)")
            ax.legend(fontsize=8)
            ax.set_title("Lattice constants (parity)")
            x = np.arange(len(lattice))
            bx.bar(x - 0.2, [r["pbe_error_percent"] for r in lattice], 0.4, color="C0", label="PBE")
            bx.bar(x + 0.2, [r["trained_error_percent"] for r in lattice], 0.4, color="C1", label="trained")
            bx.axhline(0, color="k", lw=0.8)
            marks = {"train": "", "validation": "†", "test": "*"}
            bx.set_xticks(x, [r["name"] + marks.get(r["split"], "*") for r in lattice], rotation=60, fontsize=8)
            bx.set_ylabel("error against experiment (%)")
            bx.set_title("Errors (* held out" + (", † validation)" if self.validation else ")"))
            bx.legend(fontsize=8)
            fig.tight_layout()
            _atomic_write(os.path.join(self.out, "parity.png"), lambda f: fig.savefig(f, format="png", dpi=120))
            plt.close(fig)
        if self.shrinkage:
            self._validation_plot(plt)

    def _validation_plot(self, plt: Any) -> None:
        """``validation.png``: the validation loss, and each validation entry's loss term, against the
        factor t of the network's weight (t = 0: PBE; t = 1: as trained), with the chosen t marked."""
        shrink = self.shrinkage
        factors = shrink["factors"]
        fig, ax = plt.subplots(figsize=(6, 4))
        terms = np.array(shrink["terms"], dtype=float)
        for k, name in enumerate(shrink["entries"]):
            ax.plot(factors, terms[:, k], ".-", lw=0.8, alpha=0.6, label=name)
        ax.plot(factors, shrink["losses"], "o-", color="k", lw=2, label="validation loss (mean)")
        ax.axvline(shrink["chosen"], color="C3", ls="--", lw=1, label=f"chosen t = {shrink['chosen']:g}")
        ax.set_xlabel("t (the network's weight a = t x its trained value; t = 0 is PBE)")
        ax.set_ylabel("loss (% error squared)")
        ax.set_title("Choosing the network's weight on the validation solids")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        _atomic_write(os.path.join(self.out, "validation.png"), lambda f: fig.savefig(f, format="png", dpi=120))
        plt.close(fig)


def main(args: argparse.Namespace) -> int:
    from .deepchem import DFTYamlLoader
    entries = DFTYamlLoader.load_entries(args.dataset)
    trainer = Trainer(entries, args.out, epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                      hidden=args.hidden, seed=args.seed, threads=args.threads, progress=not args.no_progress,
                      on_failure="raise" if args.strict else "skip", network=args.network, jobs=args.jobs,
                      dataset=args.dataset, targets=args.targets, optimizer=args.optimizer,
                      validation=[name for name in (args.validation or "").split(",") if name.strip()])
    if not args.restart and trainer.resume():
        print(f"solidxc train: resuming from {trainer.resumed_from} after epoch {trainer.start_epoch}", flush=True)
    print(f"solidxc train: {len(trainer.train)} training, {len(trainer.validation)} validation and "
          f"{len(trainer.test)} held-out entries, "
          f"{args.epochs} epochs, targets: {trainer.target_mode}, output in {args.out}", flush=True)
    trainer.prepare_targets()
    trainer.fit()
    trainer.check_last_step()
    trainer.choose_shrinkage()
    text = trainer.report()
    print(text)
    print(f"solidxc train: wrote {os.path.join(args.out, 'results.md')}, results.csv, training_curve.png, parity.png"
          + (", validation.png" if trainer.shrinkage else ""))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a HybridXC functional (NN + PBE) on a dataset's lattice constants")
    p.add_argument("dataset", nargs="?", default=None,
                   help="dataset YAML (default: the bundled small set, solidxc/data/small.yaml)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default="solidxc_train")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                   help="adam: one step per batch (default); gauss-newton: per epoch, every training entry's "
                        "prediction and gradient, then one Levenberg-Marquardt step damped by leave-one-out "
                        "cross-validation over the training entries (a run may switch between epochs)")
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--hidden", type=int, default=10, help="hidden units of the network")
    p.add_argument("--network", choices=NETWORKS, default="gradient",
                   help="gradient: e_x^unif(n) x p~ x NN(bounded n, zeta^2, s^2 features), b fixed at 1, so the "
                        "uniform electron gas stays PBE's (default); enhancement: the same without the factor p~, "
                        "b trained; nnpbe: DeepChem's NNPBE (raw n, xi, s; diverges in vacuum)")
    p.add_argument("--targets", choices=TARGETS, default="auto",
                   help="training targets: experiment, or pseudo-corrected = experiment + (our PBE a0 - the entry's "
                        "pbe_reference_angstrom), which removes the pseudopotential's error from what the network "
                        "learns (PBE is then computed before training); auto (default): pseudo-corrected if every "
                        "training entry has a reference")
    p.add_argument("--validation", default=None, metavar="NAMES",
                   help="comma-separated training entries to leave out of the fit; after the epochs, the network's "
                        "weight a is scaled by the factor t in " + ", ".join(f"{t:g}" for t in SHRINK_FACTORS)
                        + " with the smallest loss on them (t = 0 is PBE), like stopping early on a validation set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="threads over k-points (default: one per core)")
    p.add_argument("--jobs", type=int, default=1,
                   help="processes for the final evaluation (PBE and trained, entry by entry) and for "
                        "Gauss-Newton epochs (default 1)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start again")
    p.add_argument("--strict", action="store_true", help="stop at the first failing entry instead of skipping it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars: one line per batch instead")


def run(args: argparse.Namespace) -> int:
    if args.dataset is None:
        from .data import path
        args.dataset = path("small.yaml")
    if args.epochs < 1:
        print("solidxc train: --epochs must be at least 1", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("solidxc train: --jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        return main(args)
    except CheckpointError as exc:
        print(f"solidxc train: error: {exc}", file=sys.stderr)
        return 2

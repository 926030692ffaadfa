"""Distributed training (solidxc.distributed): two gloo ranks on this machine give the loss and
gradient of one process on all entries.

The ranks are two Python processes launched as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT in the environment), each running ``_worker`` below; the reference is the plain
DeepChem path in this process: ``entry_loss([DFTXC(entries)], labels, weights).backward()``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from solidxc import distributed  # noqa: E402
from solidxc.deepchem import DFTEntry, DFTXC, construct_nn_model, entry_loss  # noqa: E402

HERE = Path(__file__).resolve().parent

SI_A = 10.26    # bohr
AL_A = 7.65     # bohr
SEED = 1234


def _si(a: float, smearing: bool = False) -> dict:
    """Si diamond. Strained cells may close the gap at 2x2x2 k-points: ``smearing`` for those."""
    system = {"alattice": [[0.0, a / 2, a / 2], [a / 2, 0.0, a / 2], [a / 2, a / 2, 0.0]],
              "moldesc": f"Si 0 0 0; Si {a / 4} {a / 4} {a / 4}", "pseudo": "gth-pbe", "ecut": 8, "kpts": [2, 2, 2]}
    if smearing:
        system.update(smearing="fermi-dirac", temperature=0.01)
    return system


def _al() -> dict:
    a = AL_A
    return {"alattice": [[0.0, a / 2, a / 2], [a / 2, 0.0, a / 2], [a / 2, a / 2, 0.0]], "moldesc": "Al 0 0 0",
            "pseudo": "gth-pbe", "ecut": 8, "kpts": [3, 3, 3], "smearing": "fermi-dirac", "temperature": 0.02}


def _cases() -> dict:
    """Entry lists by case. ``main``: 4 entries, 2 per rank (rank 0: Si, Si; rank 1: Al lattice, Si).
    ``one``: 1 entry (rank 1 has none). ``failing``: rank 1's only entry fails (a gap of a metal)
    and is skipped."""
    si = DFTEntry.create("energy", -7.90, [_si(SI_A)], weight=1.0, name="si")
    return {
        "main": [si,
                 DFTEntry.create("lattice", 7.60, [_al()], weight=1.0, name="al-a0"),
                 DFTEntry.create("energy", -7.80, [_si(0.97 * SI_A, smearing=True)], weight=0.5, name="si-0.97"),
                 DFTEntry.create("energy", -7.85, [_si(1.03 * SI_A, smearing=True)], weight=2.0, name="si-1.03")],
        "one": [si],
        "failing": [si, DFTEntry.create("gap", 0.1, [_al()], weight=1.0, name="al-gap")],
    }


def _model(threads: int | None = None) -> DFTXC:
    torch.manual_seed(SEED)
    nn = construct_nn_model(3, 6, 1, 1)
    options = {} if threads is None else {"threads": threads}
    return DFTXC("pbe", nn, aweight0=0.3, bweight0=1.0, on_failure="skip", scf_options=options)


def _reference(entries) -> tuple[float, dict]:
    """One process, DeepChem's loss: mean_i w_i (p_i - y_i)^2 over all entries.

    With torch's intra-op threads at 1, as in the ranks (OMP_NUM_THREADS=1, torchrun's default):
    the network's outputs differ in the last bits between thread counts, which can change an
    SCF's iteration count and so its result at the level of its tolerance (1e-9 Ha), and the
    network's gradients by ~1e-7 relative. That is the SCF's reproducibility, not the
    distribution's, which this test checks to 1e-10."""
    model = _model()
    model.train()
    labels = torch.tensor([[float(e.label()[0])] for e in entries], dtype=torch.float64)
    weights = torch.tensor([[e.get_weight()] for e in entries], dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            loss = entry_loss([model(entries)], [labels], [weights])
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    return float(loss.detach()), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _worker(out_dir: str) -> None:
    """One rank (run in its own process with torchrun's environment variables)."""
    me, world = distributed.init("gloo")
    assert world == 2, world
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, entries in _cases().items():
            model = _model()
            seen = []  # the SCF options each entry ran with
            evaluate = model.evaluate_entry
            model.evaluate_entry = lambda entry: (seen.append(model.scf_options.get("threads")), evaluate(entry))[1]
            loss, grads = distributed.gradients(model, entries, with_loss=True)
            results[name] = {"loss": loss, "grads": {k: v.tolist() for k, v in grads.items()},
                             "failures": model.failures, "threads": seen}
        # A response solve that fails on rank 1 (on_failure="raise") raises on both ranks after
        # the gradient reduction, instead of leaving rank 0 waiting in it.
        if distributed._supports_backward_hook():
            model = _model()
            model.on_failure = "raise"
            model.scf_options = {"backward_maxiter": 1}
            gap = DFTEntry.create("gap", 0.02, [_si(SI_A)], name="si-gap")
            try:
                distributed.gradients(model, [_cases()["one"][0], gap])
                results["backward-failure"] = "no error"
            except Exception as exc:
                results["backward-failure"] = f"{type(exc).__name__}: {exc}"
    distributed.finalize()
    with open(os.path.join(out_dir, f"rank{me}.json"), "w") as f:
        json.dump(results, f)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out_dir: Path, world: int = 2, timeout: float = 150.0) -> list[dict]:
    """Runs ``_worker`` on ``world`` ranks as torchrun would; returns each rank's results."""
    import solidxc
    port = _free_port()
    package_root = str(Path(solidxc.__file__).resolve().parents[1])
    code = f"import sys; sys.path[:0] = [{str(HERE)!r}]; import test_distributed as t; t._worker({str(out_dir)!r})"
    procs = []
    for r in range(world):
        env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + timeout
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"the {world} ranks did not finish within {timeout:.0f} s (a hang in a collective?)")
    for r, (p, (out, err)) in enumerate(zip(procs, outputs)):
        if p.returncode != 0:
            pytest.fail(f"rank {r} failed (exit {p.returncode})\nstdout:\n{out}\nstderr:\n{err[-4000:]}")
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(world)]


def _compare(got: dict, ref: dict, tol: float = 1e-10) -> tuple[float, float]:
    """Max absolute and relative difference; asserts each component agrees to ``tol``
    relative (absolute for components below 1 in size)."""
    assert set(got) == set(ref), (sorted(got), sorted(ref))
    max_abs = max_rel = 0.0
    for name, r in ref.items():
        g = torch.as_tensor(np.asarray(got[name], dtype=float)).reshape(r.shape)
        diff = (g - r).abs()
        scale = r.abs().clamp(min=1.0)
        max_abs = max(max_abs, float(diff.max()))
        max_rel = max(max_rel, float((diff / r.abs().clamp(min=1e-300)).max()))
        bad = diff > tol * scale
        assert not bool(bad.any()), (f"{name}: distributed {g[bad].tolist()} vs one process {r[bad].tolist()} "
                                     f"(max |diff| {float(diff.max()):.3e})")
    return max_abs, max_rel


def test_shard_covers_every_entry_once():
    entries = list(range(11))
    for world in (1, 2, 3, 4, 16):
        shards = [distributed.shard(entries, r, world) for r in range(world)]
        assert sorted(sum(shards, [])) == entries
        for r, s in enumerate(shards):
            assert s == entries[r::world]  # deterministic order: i % world == rank
    with pytest.raises(ValueError):
        distributed.shard(entries, 2, 2)


def test_init_without_torchrun_is_one_process(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.init() == (0, 1)
    assert not distributed.is_distributed()
    assert distributed.shard([1, 2, 3]) == [1, 2, 3]


def test_two_ranks_match_one_process(tmp_path):
    start = time.monotonic()
    ranks = _launch(tmp_path)
    launched = time.monotonic() - start
    cases = _cases()
    for name, entries in cases.items():
        ref_loss, ref_grads = _reference(entries)
        # Both ranks hold the same loss and gradients, bit for bit (the parameters stay in step).
        assert ranks[0][name]["loss"] == ranks[1][name]["loss"], name
        assert ranks[0][name]["grads"] == ranks[1][name]["grads"], name
        assert ranks[0][name]["loss"] == pytest.approx(ref_loss, rel=1e-10, abs=1e-14), name
        max_abs, max_rel = _compare(ranks[0][name]["grads"], ref_grads)
        print(f"{name}: {len(entries)} entries, loss {ref_loss:.12e} (diff {abs(ranks[0][name]['loss'] - ref_loss):.2e}), "
              f"gradient max |diff| {max_abs:.2e}, max relative {max_rel:.2e}")
        # The NN weights take part (aweight0 = 0.3): their gradients are not zero.
        assert float(ref_grads["nnmodel.0.weight"].abs().max()) > 1e-6
        for r in (0, 1):  # each rank ran its shard (entry i on rank i % 2), with threads=1
            assert ranks[r][name]["threads"] == [1] * len(entries[r::2]), (name, r, ranks[r][name]["threads"])
    assert ranks[1]["failing"]["failures"] == 1 and ranks[0]["failing"]["failures"] == 0
    if "backward-failure" in ranks[0]:
        assert ranks[1]["backward-failure"].startswith("ConvergenceError"), ranks[1]["backward-failure"]
        assert ranks[0]["backward-failure"].startswith("RuntimeError") and "rank(s) [1]" in ranks[0]["backward-failure"]
        print(f"backward failure: rank 0 {ranks[0]['backward-failure'][:60]}...; rank 1 {ranks[1]['backward-failure'][:60]}...")
    print(f"two ranks: {launched:.1f} s; total {time.monotonic() - start:.1f} s")

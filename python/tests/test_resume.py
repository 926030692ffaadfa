"""``solidxc train`` killed with SIGKILL resumes from its last checkpoint (issue 8).

- A run killed in the middle of its second epoch (after that epoch's first optimizer step)
  resumes from the epoch-1 checkpoint, redoes epoch 2, and ends bitwise equal to a run never
  interrupted: the loss curve, the model, the optimizer state and the results table. Bitwise,
  not to a tolerance, because nothing carries over between epochs but the checkpointed state:
  an epoch's order comes from ``seed + epoch``, every lattice scan starts cold, and one thread
  (``--threads 1``, OPENBLAS_NUM_THREADS=1) fixes the order of every sum.
- A kill while a checkpoint is written leaves a torn ``checkpoint.pt.tmp``: it is removed at the
  restart and never read (planted next to the killed run's checkpoint). A torn or missing ``checkpoint.pt`` (a kill between the two renames, or a damaged
  disk) falls back to ``checkpoint.prev.pt`` and still ends equal to the uninterrupted run. With no
  readable checkpoint, or one written with other settings, the CLI exits with status 2 and a
  message naming the file, not a traceback.

Dataset: Si (diamond) and Al (fcc), GTH-PBE, Ecut 6 Ha, 2x2x2 and 3x3x3 k-points, 4 scales each:
about 1.2 s per epoch on one core.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

import solidxc  # noqa: E402

SI_HALF = 5.13155  # bohr: half the cubic lattice constant, 5.4310 A
AL_HALF = 3.8263  # bohr: 4.05 A
DATASET = [
    {"e_type": "lattice", "name": "Si", "true_val": "10.246095", "a_ref": 2 * SI_HALF, "split": "train",
     "scales": [0.98, 0.99, 1.01, 1.02],
     "systems": [{"moldesc": f"Si 0 0 0; Si {SI_HALF / 2} {SI_HALF / 2} {SI_HALF / 2}",
                  "alattice": [[0, SI_HALF, SI_HALF], [SI_HALF, 0, SI_HALF], [SI_HALF, SI_HALF, 0]],
                  "pseudo": "gth-pbe", "ecut": 6, "kpts": [2, 2, 2], "smearing": "fermi-dirac", "temperature": 0.01}]},
    {"e_type": "lattice", "name": "Al", "true_val": "7.594796", "a_ref": 2 * AL_HALF, "split": "train",
     "scales": [0.94, 0.98, 1.02, 1.06],
     "systems": [{"moldesc": "Al 0 0 0",
                  "alattice": [[0, AL_HALF, AL_HALF], [AL_HALF, 0, AL_HALF], [AL_HALF, AL_HALF, 0]],
                  "pseudo": "gth-pbe", "ecut": 6, "kpts": [3, 3, 3], "smearing": "fermi-dirac", "temperature": 0.02}]},
]
EPOCHS = 3
TIMEOUT = 300  # s, per subprocess: a hung run fails the test instead of blocking it


def _env() -> dict:
    env = dict(os.environ)
    package_root = str(Path(solidxc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _command(dataset: Path, out: Path, epochs: int = EPOCHS, *extra: str) -> list[str]:
    return [sys.executable, "-m", "solidxc.cli", "train", str(dataset), "--epochs", str(epochs), "--out", str(out),
            "--no-progress", "--threads", "1", *extra]


def _train(dataset: Path, out: Path, epochs: int = EPOCHS, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(dataset, out, epochs, *extra), capture_output=True, text=True, env=_env(),
                          timeout=TIMEOUT)


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=False)


def _tear(path: Path) -> None:
    """What a write cut short leaves: the first half of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _epoch_lines(stdout: str) -> list[str]:
    """The end-of-epoch lines without their wall time: "epoch 2/3: loss ..., skipped 0"."""
    return [line.rsplit(",", 1)[0] for line in stdout.splitlines() if line.startswith("epoch ") and ": loss " in line]


def _assert_same_run(resumed: Path, reference: Path) -> None:
    """Final checkpoints and results of two runs agree bitwise."""
    a, b = _load(resumed / "checkpoint.pt"), _load(reference / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS - 1
    assert [h["epoch"] for h in a["history"]] == list(range(1, EPOCHS + 1))
    for key in ("loss", "aweight", "bweight", "skipped"):
        assert [h[key] for h in a["history"]] == [h[key] for h in b["history"]], key
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        difference = float((a["model"][name] - b["model"][name]).abs().max())
        assert torch.equal(a["model"][name], b["model"][name]), f"{name}: max |difference| {difference:.3e}"
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    for index in state_a:
        for key in state_a[index]:
            assert torch.equal(state_a[index][key], state_b[index][key]), f"Adam {key} of parameter {index}"
    assert a["failures"] == b["failures"]
    assert (resumed / "results.csv").read_text() == (reference / "results.csv").read_text()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "si_al.yaml"
    path.write_text(yaml.safe_dump(DATASET))
    return path


@pytest.fixture(scope="module")
def uninterrupted(dataset) -> tuple[Path, str]:
    """A 3-epoch run never killed: its output directory and stdout."""
    out = dataset.parent / "uninterrupted"
    run = _train(dataset, out)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(_epoch_lines(run.stdout)) == EPOCHS
    assert (out / "checkpoint.prev.pt").exists() and not list(out.glob("*.tmp*"))
    return out, run.stdout


@pytest.mark.fast
def test_sigkill_in_epoch_2_resumes_from_epoch_1_and_matches_an_uninterrupted_run_bitwise(dataset, uninterrupted, tmp_path):
    reference, reference_stdout = uninterrupted
    out = tmp_path / "killed"
    with open(tmp_path / "killed.stderr", "w") as stderr:
        process = subprocess.Popen(_command(dataset, out), stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env())
        watchdog = threading.Timer(TIMEOUT, process.kill)
        watchdog.start()
        seen = []
        try:
            # Wait for the epoch-1 checkpoint (its line is printed after the write), then for the
            # first optimizer step of epoch 2; epoch 2's other entry (half of a 1.2 s epoch) is still to run.
            for line in process.stdout:
                seen.append(line)
                if line.startswith(f"epoch 2/{EPOCHS}: batch 1/2"):
                    process.send_signal(signal.SIGKILL)
                    break
            process.wait()
            process.stdout.close()
        finally:
            watchdog.cancel()
    assert process.returncode == -signal.SIGKILL, "".join(seen) + (tmp_path / "killed.stderr").read_text()[-3000:]
    assert any(line.startswith(f"epoch 1/{EPOCHS}: loss") for line in seen)
    assert not any(line.startswith(f"epoch 2/{EPOCHS}: loss") for line in seen)

    killed = _load(out / "checkpoint.pt")  # loads: the kill left the epoch-1 checkpoint whole
    assert killed["epoch"] == 0 and [h["epoch"] for h in killed["history"]] == [1]
    # Had the kill landed in the checkpoint write, it would have left a torn temporary file too.
    shutil.copy(out / "checkpoint.pt", out / "checkpoint.pt.tmp")
    _tear(out / "checkpoint.pt.tmp")
    (out / "checkpoint.pt.tmp4242").write_bytes(b"PK\x03\x04 torn")  # the name older versions used

    resumed = _train(dataset, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint.pt'} after epoch 1" in resumed.stdout
    assert not list(out.glob("*.tmp*"))
    # The loss curve continues: epochs 2 and 3 printed after the resume are the reference's.
    assert _epoch_lines(resumed.stdout) == _epoch_lines(reference_stdout)[1:]
    _assert_same_run(out, reference)


@pytest.fixture(scope="module")
def two_epochs(dataset) -> Path:
    """The same run stopped after 2 of its 3 epochs (checkpoint.pt: epoch 2, checkpoint.prev.pt: epoch 1)."""
    out = dataset.parent / "two_epochs"
    run = _train(dataset, out, EPOCHS - 1)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.mark.fast
@pytest.mark.parametrize("damage", ["torn", "missing"])
def test_unreadable_or_missing_checkpoint_falls_back_to_the_previous_one(dataset, uninterrupted, two_epochs,
                                                                        tmp_path, damage):
    """torn: checkpoint.pt cut in half (a damaged disk); missing: a kill between renaming
    checkpoint.pt to checkpoint.prev.pt and the new file to checkpoint.pt."""
    out = tmp_path / "run"
    shutil.copytree(two_epochs, out)
    if damage == "torn":
        _tear(out / "checkpoint.pt")
    else:
        (out / "checkpoint.pt").unlink()
    resumed = _train(dataset, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint.prev.pt'} after epoch 1" in resumed.stdout
    if damage == "torn":
        assert f"{out / 'checkpoint.pt'} is unreadable" in resumed.stderr
        assert (out / "checkpoint.pt.corrupt").exists()
    _assert_same_run(out, uninterrupted[0])


@pytest.mark.fast
def test_no_readable_checkpoint_exits_2_naming_both_files(dataset, two_epochs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(two_epochs, out)
    _tear(out / "checkpoint.pt")
    (out / "checkpoint.prev.pt").write_bytes(b"not a checkpoint")
    run = _train(dataset, out)
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"{out / 'checkpoint.pt'} is unreadable" in run.stderr
    assert f"{out / 'checkpoint.prev.pt'} is unreadable" in run.stderr and "--restart" in run.stderr
    assert "Traceback" not in run.stderr


def _entries(dataset: Path) -> list:
    from solidxc.deepchem import DFTYamlLoader
    return DFTYamlLoader.load_entries(str(dataset))


@pytest.mark.fast
def test_checkpoint_of_a_run_with_other_settings_is_refused(dataset, two_epochs, tmp_path):
    from solidxc.train import CheckpointError, Trainer

    out = tmp_path / "run"
    shutil.copytree(two_epochs, out)
    trainer = Trainer(_entries(dataset), str(out), epochs=EPOCHS, hidden=6, progress=False)
    with pytest.raises(CheckpointError, match=r"cannot resume from .*checkpoint\.pt: .*\(--hidden 10 there, 6 now\)"):
        trainer.resume()
    del trainer
    trainer = Trainer(_entries(dataset)[:1], str(out), epochs=EPOCHS, progress=False)
    with pytest.raises(CheckpointError, match="the training entries of the dataset differ"):
        trainer.resume()


@pytest.mark.fast
def test_a_second_trainer_on_the_same_directory_is_refused(dataset, tmp_path):
    from solidxc.train import CheckpointError, Trainer

    entries = _entries(dataset)
    first = Trainer(entries, str(tmp_path), epochs=1, progress=False)
    with pytest.raises(CheckpointError, match=f"{tmp_path} is in use by another solidxc train \\(pid {os.getpid()}\\)"):
        Trainer(entries, str(tmp_path), epochs=1, progress=False)
    del first


def _with_checkpoints_of(reference: Path, out: Path) -> None:
    """``out`` holds the reference run's trained checkpoints and nothing else: a resumed run has no
    epoch left and only evaluates."""
    out.mkdir()
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        shutil.copy(reference / name, out / name)


@pytest.mark.fast
def test_evaluation_in_two_worker_processes_equals_the_serial_one_and_is_cached_per_entry(dataset, uninterrupted, tmp_path):
    import csv
    import json

    from solidxc.units import BOHR_IN_ANGSTROM

    reference = uninterrupted[0]
    out = tmp_path / "jobs"
    _with_checkpoints_of(reference, out)
    run = _train(dataset, out, EPOCHS, "--jobs", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"after epoch {EPOCHS}" in run.stdout
    # Workers rebuild the entries and the trained functional from the dataset and the parameters.
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()
    assert run.stdout.count("PBE: ") == run.stdout.count("trained: ") == len(DATASET)

    # One cached value per (functional, entry): a rerun computes nothing and reads them. Planted values
    # show that the table comes from the cache.
    cache = json.loads((out / "predictions.json").read_text())
    assert sorted(k.split("|")[0] == "pbe" for k in cache) == [False] * len(DATASET) + [True] * len(DATASET)
    (out / "predictions.json").write_text(json.dumps({k: (10.0 if k.startswith("pbe|") else v) for k, v in cache.items()}))
    rerun = _train(dataset, out, EPOCHS)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "PBE: " not in rerun.stdout and "trained: " not in rerun.stdout
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [float(r["pbe"]) for r in rows] == [10.0 * BOHR_IN_ANGSTROM] * len(DATASET)
    assert [r["trained"] for r in rows] == [r["trained"] for r in csv.DictReader(open(reference / "results.csv"))]


@pytest.mark.fast
def test_an_evaluation_killed_after_its_first_entry_resumes_with_the_second(dataset, uninterrupted, tmp_path):
    reference = uninterrupted[0]
    out = tmp_path / "killed_evaluation"
    _with_checkpoints_of(reference, out)
    process = subprocess.Popen(_command(dataset, out), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=_env())
    watchdog = threading.Timer(TIMEOUT, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            if line.startswith("PBE: ") and line.rstrip().endswith(f"[1/{len(DATASET)}]"):
                process.send_signal(signal.SIGKILL)
                first = line.split()[1]
                break
        process.wait()
        process.stdout.close()
    finally:
        watchdog.cancel()
    assert process.returncode == -signal.SIGKILL
    resumed = _train(dataset, out, EPOCHS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    pbe_lines = [line for line in resumed.stdout.splitlines() if line.startswith("PBE: ")]
    assert len(pbe_lines) == len(DATASET) - 1 and first not in pbe_lines[0]
    assert pbe_lines[0].endswith(f"[{len(DATASET)}/{len(DATASET)}]")
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()


@pytest.mark.fast
def test_evaluation_workers_die_with_a_killed_trainer(tmp_path):
    """A worker busy with a long task (here a 120 s sleep for an SCF) is stopped by the kernel when
    the trainer process dies (SIGKILL: no cleanup runs in the trainer), instead of finishing its task
    for nobody."""
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from solidxc.train import _die_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, initializer=_die_with_parent, mp_context=multiprocessing.get_context('spawn'))\n"
        "    pool.submit(os.getpid).result()\n"            # the worker has started and run its initializer
        "    future = pool.submit(time.sleep, 120)\n"
        "    print(pool.submit(os.getpid).done() or '', flush=True)\n"
        "    print(list(pool._processes)[0], flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        parent.stdout.readline()
        worker = int(parent.stdout.readline())
        time.sleep(0.5)  # the worker is inside time.sleep(120)
        os.kill(worker, 0)  # alive
        parent.kill()
        parent.wait(timeout=10)
        for _ in range(100):
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            if open(f"/proc/{worker}/stat").read().split()[2] == "Z":  # exited, not yet reaped
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the worker outlived its parent by 10 s")
    finally:
        parent.kill()
        parent.stdout.close()

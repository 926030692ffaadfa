"""``solidxc train --validation``: training entries left out of the fit choose the network's weight
(issue 5).

After the epochs, the network's weight a is scaled by the factor t of ``SHRINK_FACTORS`` whose
functional PBE + t a NN has the smallest loss on the validation entries (the training loss's terms
and targets). Checked here:

- which entries are fitted and which validate, and the errors for a name that is not a training
  entry or for leaving nothing to fit;
- the validation entries get their pseudo-corrected targets like the fitted ones, and an epoch
  never draws them;
- the factor chosen from planted predictions (no SCF runs, and no held-out entry is computed), its
  losses written out by hand, ties going to the smaller factor, and the model's weight after it;
- the report names the validation split, its mean errors and the factors' losses, and draws
  ``validation.png``;
- a checkpoint written with one validation set is not resumed with another;
- t = 0 stands for PBE itself: HybridXC with a = 0 gives PBE's lattice constant (one real scan).
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from solidxc.units import BOHR_IN_ANGSTROM  # noqa: E402

from test_resume import DATASET  # noqa: E402
from test_train_targets import PBE_REF, PLANTED_PBE  # noqa: E402

HELD_OUT = "Al-test"


def _entries(tmp_path):
    """Si and Al (training split, with PBE references) and a held-out copy of Al."""
    from solidxc.deepchem import DFTYamlLoader
    data = copy.deepcopy(DATASET)
    for entry in data:
        entry["pbe_reference_angstrom"] = PBE_REF[entry["name"]]
    held_out = copy.deepcopy(data[1])
    held_out.update(name=HELD_OUT, split="test")
    data.append(held_out)
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    return DFTYamlLoader.load_entries(str(path))


def _trainer(tmp_path, validation=("Al",), out="out"):
    from solidxc.train import Trainer
    return Trainer(_entries(tmp_path), str(tmp_path / out), progress=False, hidden=4, validation=validation)


def _plant(trainer, values: dict) -> None:
    """Writes {cache key: value} into the trainer's prediction cache."""
    path = trainer.out + "/predictions.json"
    cache = trainer._read_cache()
    cache.update(values)
    with open(path, "w") as f:
        json.dump(cache, f)


def _pbe_keys(trainer) -> dict:
    """PBE predictions (PLANTED_PBE, bohr) of every entry; the held-out copy of Al gets Al's."""
    keys = trainer._prediction_keys("pbe", trainer.entries)
    return {key: PLANTED_PBE["Al" if e.name == HELD_OUT else e.name] for key, e in zip(keys, trainer.entries)}


def _no_scf(monkeypatch):
    import solidxc.train as train

    def fail(*args, **kwargs):
        raise AssertionError("an SCF ran although the predictions it needs are cached")
    monkeypatch.setattr(train, "_predict_entry", fail)


@pytest.mark.fast
def test_validation_entries_are_left_out_of_the_fit_and_bad_names_are_refused(tmp_path):
    trainer = _trainer(tmp_path)
    assert [e.name for e in trainer.train] == ["Si"]
    assert [e.name for e in trainer.validation] == ["Al"]
    assert [e.name for e in trainer.test] == [HELD_OUT]
    assert trainer.settings["validation"] == ["Al"]
    del trainer
    with pytest.raises(SystemExit, match=r"--validation: 'Cu' is not the name of a training entry \(training entries: Si, Al\)"):
        _trainer(tmp_path, validation=("Al", "Cu"), out="b")
    with pytest.raises(SystemExit, match="--validation: 'Al-test' is not the name of a training entry"):
        _trainer(tmp_path, validation=(HELD_OUT,), out="c")
    with pytest.raises(SystemExit, match="--validation names every training entry; none is left to fit"):
        _trainer(tmp_path, validation=("Si", "Al"), out="d")


@pytest.mark.fast
def test_validation_entries_get_targets_and_an_epoch_never_draws_them(tmp_path, monkeypatch):
    import solidxc.train as train
    trainer = _trainer(tmp_path)
    _plant(trainer, _pbe_keys(trainer))
    _no_scf(monkeypatch)
    trainer.prepare_targets()
    for entry, target in zip(trainer.train + trainer.validation, trainer.targets):
        y = float(next(d["true_val"] for d in DATASET if d["name"] == entry.name))
        assert target == pytest.approx(y + PLANTED_PBE[entry.name] - PBE_REF[entry.name] / BOHR_IN_ANGSTROM, abs=1e-12)
    drawn = []
    monkeypatch.setattr(train.Trainer, "_bar", lambda self, total, desc: None)
    monkeypatch.setattr(type(trainer.model), "forward", lambda self, entry: drawn.append(entry.name) or
                        torch.zeros(1, dtype=torch.float64))
    trainer.epoch(0)
    assert drawn == ["Si"]


def _plant_trained(trainer, error_percent) -> dict:
    """For each factor t, the validation entry Al's trained prediction with a = t a0, planted so that
    its error against its target is ``error_percent(t)`` % of the label; returns t -> loss by hand."""
    weight = trainer.model.hybridxc.aweight
    a0 = float(weight.detach())
    al = trainer.validation[0]
    y = float(al.label().reshape(-1)[0])
    target = trainer.targets[len(trainer.train)]
    planted, losses = {}, {}
    from solidxc.train import SHRINK_FACTORS
    for t in SHRINK_FACTORS:
        with torch.no_grad():
            weight.fill_(t * a0)
        if t == 0:  # t = 0 is PBE's prediction (planted by _pbe_keys)
            losses[t] = (100 * (PLANTED_PBE["Al"] - target) / y) ** 2
            continue
        planted[trainer._prediction_keys("trained", [al])[0]] = target + y * error_percent(t) / 100
        losses[t] = error_percent(t) ** 2
    with torch.no_grad():
        weight.fill_(a0)
    _plant(trainer, planted)
    return losses


def _planted_trainer(tmp_path, error_percent, out="out"):
    """A trainer (validation: Al) with a = 0.3, PBE and every factor's Al prediction planted."""
    trainer = _trainer(tmp_path, out=out)
    _plant(trainer, _pbe_keys(trainer))
    trainer.prepare_targets()
    with torch.no_grad():
        trainer.model.hybridxc.aweight.fill_(0.3)
    return trainer, _plant_trained(trainer, error_percent)


@pytest.mark.fast
def test_the_factor_with_the_smallest_validation_loss_is_chosen_from_cached_predictions(tmp_path, monkeypatch):
    _no_scf(monkeypatch)
    trainer, losses = _planted_trainer(tmp_path, lambda t: 1.0 - 2.5 * t)  # zero at t = 0.4
    before = set(trainer._read_cache())
    assert trainer.choose_shrinkage() == 0.4
    assert float(trainer.model.hybridxc.aweight.detach()) == pytest.approx(0.4 * 0.3, abs=1e-15)
    assert set(trainer._read_cache()) == before  # nothing computed: not the held-out entry either
    shrink = trainer.shrinkage
    assert shrink["entries"] == ["Al"] and shrink["trained_aweight"] == pytest.approx(0.3, abs=1e-15)
    assert shrink["losses"] == pytest.approx([losses[t] for t in shrink["factors"]], rel=1e-9)

    # Equal losses at t = 0.2 and 0.6 (errors of 0.5 %), larger elsewhere: the smaller wins.
    second, _ = _planted_trainer(tmp_path, lambda t: 0.5 + 10 * (t - 0.2) ** 2 * (t - 0.6) ** 2, out="second")
    assert second.choose_shrinkage() == 0.2


@pytest.mark.fast
def test_report_names_the_validation_split_and_draws_its_curve(tmp_path, monkeypatch):
    _no_scf(monkeypatch)
    trainer, _ = _planted_trainer(tmp_path, lambda t: 1.0 - 2.5 * t)
    trainer.choose_shrinkage()
    # The chosen functional's predictions of the other entries: 1 % above experiment.
    keys = trainer._prediction_keys("trained", trainer.entries)
    cache = trainer._read_cache()
    _plant(trainer, {k: 1.01 * float(e.label().reshape(-1)[0]) for k, e in zip(keys, trainer.entries) if k not in cache})
    text = trainer.report()
    assert "| Al | validation | lattice |" in text and "| Si | train | lattice |" in text
    assert f"| {HELD_OUT} | test | lattice |" in text
    assert "- validation: mean absolute error of the lattice constants" in text
    assert "- training split (train + validation): mean absolute error" in text
    assert "the network's weight a = 0.30000 after training was scaled by t = 0.4" in text
    assert "| validation loss | " in text
    rows = (tmp_path / "out" / "results.csv").read_text()
    assert "Al,validation,lattice" in rows
    assert (tmp_path / "out" / "validation.png").stat().st_size > 1000


@pytest.mark.fast
def test_a_checkpoint_with_another_validation_set_is_refused(tmp_path):
    from solidxc.train import CheckpointError, Trainer
    first = _trainer(tmp_path, validation=("Al",))
    first.save(0)
    del first
    second = Trainer(_entries(tmp_path), str(tmp_path / "out"), progress=False, hidden=4)
    with pytest.raises(CheckpointError, match="--validation Al there, none now"):
        second.resume()


@pytest.mark.fast
def test_no_network_weight_is_pbe(tmp_path):
    """t = 0 is taken from PBE's predictions without an SCF: check that a = 0 really is PBE."""
    from solidxc.train import _predict_entry
    trainer = _trainer(tmp_path)
    with torch.no_grad():
        trainer.model.hybridxc.aweight.fill_(0.0)
    si = trainer.train[0]
    options = {"tol": 1e-10, "threads": 1}
    pbe, error = _predict_entry(si, "pbe", options)
    assert error is None
    trainer.model.eval()
    hybrid, error = _predict_entry(si, trainer.model.hybridxc, options)
    assert error is None
    assert hybrid == pytest.approx(pbe, abs=1e-7)
    # and a network that is switched on moves it (the comparison can fail)
    with torch.no_grad():
        trainer.model.hybridxc.aweight.fill_(0.5)
    moved, error = _predict_entry(si, trainer.model.hybridxc, options)
    assert error is None and abs(moved - pbe) > 1e-4


@pytest.mark.fast
def test_cli_run_with_validation_reports_the_chosen_factor(tmp_path):
    """``solidxc train --validation Al`` end to end on two small crystals (real SCFs): the run fits Si
    only, scans the factors on Al, and the report's validation losses are Al's squared % errors
    against experiment at the reported lattice constants."""
    from test_resume import _train
    data = copy.deepcopy(DATASET)
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    done = _train(path, out, 1, "--validation", "Al", "--targets", "experiment")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 training, 1 validation and 0 held-out entries" in done.stdout
    assert "solidxc train: validation chose a = " in done.stdout
    text = (out / "results.md").read_text()
    assert "| Al | validation | lattice |" in text
    table = [line for line in text.splitlines() if line.startswith("| validation loss |")]
    assert len(table) == 1
    losses = [float(x) for x in table[0].strip("| ").split("|")[1:]]
    chosen = float(text.split("was scaled by t = ")[1].split(",")[0])
    from solidxc.train import SHRINK_FACTORS
    assert chosen == SHRINK_FACTORS[int(np.argmin(losses))]
    row = next(r for r in (out / "results.csv").read_text().splitlines() if r.startswith("Al,"))
    trained_error = float(row.split(",")[-1])
    assert trained_error ** 2 == pytest.approx(min(losses), rel=2e-3)  # 4 significant digits in the table
    assert (out / "validation.png").exists()

"""``solidxc train --targets``: pseudo-corrected training targets (issue 5).

With cheap reduced-valence pseudopotentials, part of the gap between our PBE a0 and experiment is
the pseudopotential's error, not PBE's. ``--targets pseudo-corrected`` trains on
t = y + (PBE - PBE_ref), where PBE_ref is the entry's ``pbe_reference_angstrom`` (a published
PBE a0 of the same solid), so the network sees PBE's error y - PBE_ref only. Checked here:

- the loss term against a target, written out by hand;
- which mode ``auto`` picks, and the errors for a missing or malformed reference;
- the targets computed from (planted) PBE predictions, with no SCF run, and that the reference keys
  leave the prediction cache's keys unchanged;
- an epoch hands every entry its corrected target;
- a checkpoint of one mode is not resumed in the other.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from solidxc.errors import InputError  # noqa: E402
from solidxc.units import BOHR_IN_ANGSTROM  # noqa: E402

from test_resume import DATASET  # noqa: E402

PBE_REF = {"Si": 5.4755, "Al": 4.0439}  # Å, the values of solids.yaml's Si and Al entries (rounded)
PLANTED_PBE = {"Si": 10.33, "Al": 7.70}  # bohr: what our "PBE scan" returns, planted in the cache


def _entries(tmp_path, references=True, mutate=None):
    from solidxc.deepchem import DFTYamlLoader
    data = copy.deepcopy(DATASET)
    if references:
        for entry in data:
            entry["pbe_reference_angstrom"] = PBE_REF[entry["name"]]
    if mutate is not None:
        mutate(data)
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    return DFTYamlLoader.load_entries(str(path))


def _plant_pbe(trainer, tmp_path):
    """Writes PLANTED_PBE into the trainer's prediction cache under the keys of entries *without*
    reference keys: the same keys must serve entries with them."""
    from solidxc.deepchem import DFTYamlLoader
    from solidxc.train import _fingerprint
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(DATASET))
    cache = {f"pbe|{_fingerprint([e])}|tol={trainer.settings['tol']:g}": PLANTED_PBE[e.name]
             for e in DFTYamlLoader.load_entries(str(path))}
    (tmp_path / "out" / "predictions.json").write_text(json.dumps(cache))


@pytest.mark.fast
def test_loss_term_against_a_target_is_the_relative_error_to_the_label(tmp_path):
    from solidxc.train import entry_loss_term
    entry = _entries(tmp_path)[0]
    y = float(DATASET[0]["true_val"])
    p = torch.tensor([10.4], dtype=torch.float64)
    assert float(entry_loss_term(entry, p)) == pytest.approx((100 * (10.4 - y) / y) ** 2, rel=1e-14)
    assert float(entry_loss_term(entry, p, 10.3)) == pytest.approx((100 * (10.4 - 10.3) / y) ** 2, rel=1e-14)


@pytest.mark.fast
def test_auto_mode_and_reference_errors(tmp_path):
    from solidxc.train import Trainer
    assert Trainer(_entries(tmp_path), str(tmp_path / "a"), progress=False).target_mode == "pseudo-corrected"
    assert Trainer(_entries(tmp_path, references=False), str(tmp_path / "b"), progress=False).target_mode == "experiment"
    assert Trainer(_entries(tmp_path), str(tmp_path / "c"), progress=False,
                   targets="experiment").target_mode == "experiment"

    def drop_al(data):
        del data[1]["pbe_reference_angstrom"]
    one_missing = _entries(tmp_path, mutate=drop_al)
    assert Trainer(one_missing, str(tmp_path / "d"), progress=False).target_mode == "experiment"
    with pytest.raises(SystemExit, match="needs pbe_reference_angstrom in every training entry; missing in Al"):
        Trainer(one_missing, str(tmp_path / "e"), progress=False, targets="pseudo-corrected")
    with pytest.raises(SystemExit, match="--targets must be one of"):
        Trainer(one_missing, str(tmp_path / "f"), progress=False, targets="corrected")
    for bad in ("4.0 A", -4.0, float("nan"), True):
        def set_bad(data, bad=bad):
            data[1]["pbe_reference_angstrom"] = bad
        with pytest.raises(InputError, match="entry 'Al': pbe_reference_angstrom must be a positive number"):
            Trainer(_entries(tmp_path, mutate=set_bad), str(tmp_path / "g"), progress=False)


@pytest.mark.fast
def test_targets_are_experiment_plus_pseudopotential_error_from_cached_pbe(tmp_path, monkeypatch):
    import solidxc.train as train
    trainer = train.Trainer(_entries(tmp_path), str(tmp_path / "out"), progress=False)
    _plant_pbe(trainer, tmp_path)

    def no_scf(*args, **kwargs):
        raise AssertionError("an SCF ran although every PBE value is cached")
    monkeypatch.setattr(train, "_predict_entry", no_scf)
    trainer.prepare_targets()
    for entry, target in zip(trainer.train, trainer.targets):
        y = float(next(d["true_val"] for d in DATASET if d["name"] == entry.name))
        expected = y + PLANTED_PBE[entry.name] - PBE_REF[entry.name] / BOHR_IN_ANGSTROM
        assert target == pytest.approx(expected, abs=1e-12), entry.name

    # An epoch hands each entry its corrected target.
    seen = {}

    def record(entry, prediction, target=None):
        seen[entry.name] = target
        return prediction.reshape(-1)[0] * 0.0  # differentiable, so the step runs
    monkeypatch.setattr(train, "entry_loss_term", record)
    trainer.epoch(0)
    assert seen == {e.name: t for e, t in zip(trainer.train, trainer.targets)}


@pytest.mark.fast
def test_experiment_targets_need_no_pbe_before_training(tmp_path, monkeypatch):
    import solidxc.train as train
    trainer = train.Trainer(_entries(tmp_path, references=False), str(tmp_path / "out"), progress=False)
    monkeypatch.setattr(train.Trainer, "predict", lambda self, kind: pytest.fail("PBE computed before training"))
    trainer.prepare_targets()
    assert trainer.targets == [None] * len(trainer.train)


@pytest.mark.fast
def test_a_failed_pbe_scan_stops_a_corrected_run_naming_the_entry(tmp_path, monkeypatch):
    import solidxc.train as train
    trainer = train.Trainer(_entries(tmp_path), str(tmp_path / "out"), progress=False)
    monkeypatch.setattr(train.Trainer, "predict", lambda self, kind: [np.nan, 7.7])
    with pytest.raises(SystemExit, match="entry 'Si': its PBE scan failed"):
        trainer.prepare_targets()


@pytest.mark.fast
def test_checkpoint_of_the_other_target_mode_is_refused(tmp_path):
    from solidxc.train import CheckpointError, Trainer
    out = tmp_path / "out"
    first = Trainer(_entries(tmp_path), str(out), progress=False, targets="experiment")
    first.save(0)
    del first
    second = Trainer(_entries(tmp_path), str(out), progress=False)
    with pytest.raises(CheckpointError, match="--targets experiment there, pseudo-corrected now"):
        second.resume()
    del second
    # In experiment mode the reference keys are documentation: a dataset without them resumes.
    third = Trainer(_entries(tmp_path, references=False), str(out), progress=False, targets="experiment")
    assert third.resume()


@pytest.mark.fast
def test_report_measures_pbe_and_trained_against_the_targets_too(tmp_path, monkeypatch):
    """The table compares with experiment; the extra line and the learning curve's PBE baseline use
    the corrected targets (PBE's error there is the reference PBE's: y - PBE_ref)."""
    import solidxc.train as train
    trainer = train.Trainer(_entries(tmp_path), str(tmp_path / "out"), progress=False)
    _plant_pbe(trainer, tmp_path)
    trainer.prepare_targets()
    rows = []
    for entry in trainer.train:
        y = float(next(d["true_val"] for d in DATASET if d["name"] == entry.name))
        p = PLANTED_PBE[entry.name]
        rows.append({"name": entry.name, "split": "train", "type": "lattice", "experiment": y * BOHR_IN_ANGSTROM,
                     "pbe": p * BOHR_IN_ANGSTROM, "trained": y * BOHR_IN_ANGSTROM,
                     "pbe_error_percent": 100 * (p - y) / y, "trained_error_percent": 0.0})
    for row in rows:
        y = row["experiment"]
        assert trainer._target_error(row, "pbe") == pytest.approx(100 * (PBE_REF[row["name"]] - y) / y, abs=1e-9)
        assert trainer._target_error(row, "trained") == pytest.approx(
            -100 * (PLANTED_PBE[row["name"]] * BOHR_IN_ANGSTROM - PBE_REF[row["name"]]) / y, abs=1e-9)
    text = trainer.markdown(rows)
    expected = np.mean([abs(100 * (PBE_REF[r["name"]] - r["experiment"]) / r["experiment"]) for r in rows])
    assert f"against the training targets (experiment + our PBE − the entry's pbe_reference_angstrom): PBE {expected:.3f} %" in text
    assert "Training targets: pseudo-corrected." in text

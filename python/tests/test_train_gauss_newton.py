"""``solidxc train --optimizer gauss-newton``: one Levenberg-Marquardt step per epoch (issue 5).

Checked here:

- the leave-one-out cross-validation score of every damping factor, against ridge fits written
  out independently (normal equations, the left-out row really left out);
- a step is taken when the entries agree and refused when every left-out entry is predicted
  worse than by no step;
- the trust region: no predicted residual change above ``max_change``, no parameter change
  above ``max_parameter_step``;
- bad Jacobians are refused with a message;
- end to end on two small crystals: after the epoch's step, each entry's real lattice constant
  (new SCFs) is where the linear model said it would be, which checks the lattice-constant
  gradients, the residual scaling and how the step is put into the network's parameters.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from test_resume import DATASET  # noqa: E402


def _loo_by_hand(jac: np.ndarray, r: np.ndarray, lam: float) -> float:
    """Mean squared left-out residual of the ridge step, from the normal equations."""
    top = np.linalg.norm(jac, 2)
    errors = []
    for i in range(len(r)):
        keep = np.arange(len(r)) != i
        a, b = jac[keep], r[keep]
        d = -np.linalg.solve(a.T @ a + lam * top ** 2 * np.eye(jac.shape[1]), a.T @ b)
        errors.append(r[i] + jac[i] @ d)
    return float(np.mean(np.square(errors)))


def _gauss_newton_trainer(tmp_path, data: list, epochs: int, **options):
    """A Gauss-Newton trainer (experiment targets, 4 hidden units) on ``data`` written as YAML."""
    import solidxc.train as train
    from solidxc.deepchem import DFTYamlLoader
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    return train.Trainer(DFTYamlLoader.load_entries(str(path)), str(tmp_path / "out"), epochs=epochs, hidden=4,
                         progress=False, targets="experiment", optimizer="gauss-newton", **options)


@pytest.mark.fast
def test_cross_validation_scores_match_ridge_fits_written_out():
    from solidxc.train import levenberg_marquardt_step
    rng = np.random.default_rng(3)
    jac = rng.normal(size=(12, 5)) * np.array([1.0, 0.1, 3.0, 0.01, 1.0])
    r = jac @ rng.normal(size=5) + 0.05 * rng.normal(size=12)
    fit = levenberg_marquardt_step(jac, r, max_change=1e9, max_parameter_step=1e9)
    assert len(fit["cv"]) > 5
    for lam, score in fit["cv"].items():
        assert score == pytest.approx(_loo_by_hand(jac, r, lam), rel=1e-9), lam
    assert fit["lambda"] == min(fit["cv"], key=fit["cv"].get)
    assert not fit["damped"]
    # The step and its linear prediction belong together, and it fits the training entries.
    np.testing.assert_allclose(fit["predicted"], r + jac @ fit["step"], atol=1e-12)
    assert np.mean(fit["predicted"] ** 2) < 0.1 * np.mean(r ** 2)
    assert fit["cv_no_step"] == pytest.approx(np.mean(r ** 2), rel=1e-14)


@pytest.mark.fast
def test_no_step_when_every_left_out_entry_is_predicted_worse():
    from solidxc.train import levenberg_marquardt_step
    # One parameter moves every entry alike; the residuals average to zero, so the step fitted
    # without any one entry moves the left-out entry away from its target.
    jac = np.ones((8, 1))
    r = np.array([1.0, -1.0] * 4)
    fit = levenberg_marquardt_step(jac, r)
    assert fit["lambda"] is None
    assert all(score > fit["cv_no_step"] for score in fit["cv"].values())
    assert not fit["step"].any()
    np.testing.assert_array_equal(fit["predicted"], r)


@pytest.mark.fast
def test_trust_region_bounds_predicted_changes_and_parameter_steps():
    from solidxc.train import levenberg_marquardt_step
    rng = np.random.default_rng(5)
    jac = rng.normal(size=(10, 4))
    r = jac @ np.array([3.0, -2.0, 1.0, 0.5])  # exactly linear, far away: the full step is large
    free = levenberg_marquardt_step(jac, r, max_change=1e9, max_parameter_step=1e9)
    assert np.abs(jac @ free["step"]).max() > 2.0
    for max_change, max_step in ((2.0, 1e9), (1e9, 0.1), (0.5, 0.05)):
        fit = levenberg_marquardt_step(jac, r, max_change=max_change, max_parameter_step=max_step)
        assert fit["damped"]
        assert np.abs(jac @ fit["step"]).max() <= max_change * (1 + 1e-12)
        assert np.abs(fit["step"]).max() <= max_step * (1 + 1e-12)
        assert np.mean(fit["predicted"] ** 2) < np.mean(r ** 2)  # still downhill


@pytest.mark.fast
def test_bad_jacobians_are_refused():
    from solidxc.train import levenberg_marquardt_step
    with pytest.raises(ValueError, match=r"jacobian must be \(entries, parameters\) = \(3, ...\), got \(2, 2\)"):
        levenberg_marquardt_step(np.ones((2, 2)), np.ones(3))
    with pytest.raises(ValueError, match="must be finite"):
        levenberg_marquardt_step(np.array([[1.0], [np.nan]]), np.ones(2))
    one = levenberg_marquardt_step(np.ones((1, 3)), np.ones(1))  # one entry: nothing to cross-validate
    assert one["lambda"] is None and not one["step"].any()


@pytest.mark.fast
def test_a_gauss_newton_epoch_lands_where_its_linear_model_said(tmp_path):
    import solidxc.train as train
    data = copy.deepcopy(DATASET)
    data[1]["true_val"] = str(float(data[1]["true_val"]) * 1.03)  # both entries now ask for expansion
    trainer = _gauss_newton_trainer(tmp_path, data, epochs=1, threads=1)
    start = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.fit()
    record = trainer.history[-1]
    assert record["method"] == "gauss-newton" and record["skipped"] == 0
    assert record["lambda"] is not None, record
    moved = max(float((p.detach() - q).abs().max()) for p, q in zip(trainer.model.parameters(), start))
    assert 1e-4 < moved <= train.GN_MAX_PARAMETER_STEP * (1 + 1e-12)  # a step, inside the trust region
    after = trainer.gradients()
    for entry, (value, _, error) in zip(trainer.train, after):
        assert error is None
        y = float(entry.label().reshape(-1)[0])
        actual = 100 * (value - y) / y
        predicted = record["predicted_residuals"][entry.name]
        before = -np.sqrt(record["batch_losses"][[n[0] for n in record["batch_entries"]].index(entry.name)])
        # From PBE only a moves, by at most the trust region: a0 changes by a few 1e-3 %, and the
        # linear model's error is second order (1.5 % of the change here; 15 % for a step 10x
        # larger, as it should be). A wrong gradient or a step put into the wrong parameter would
        # miss by the whole change.
        assert abs(predicted - before) > 1e-3, entry.name
        assert actual == pytest.approx(predicted, abs=0.05 * abs(predicted - before)), entry.name
    # The checkpoint records the method, and the step lowered the training loss.
    saved = torch.load(str(tmp_path / "out" / "checkpoint.pt"), weights_only=False)
    assert saved["history"][-1]["method"] == "gauss-newton"
    assert record["predicted_loss"] < record["loss"]


def _overshooting(trainer, calls: list | None = None):
    """Planted ``Trainer.gradients``, no SCF: each entry's error (%) is c_i + g_i.theta + K (g_i.theta)^2
    (theta measured from ``trainer``'s start), so the linear model's step overshoots when K is large."""
    theta0 = trainer._parameter_vector()
    rng = np.random.default_rng(0)
    g = 0.2 * rng.normal(size=theta0.size)
    slopes = np.array([g, 0.8 * g + 0.05 * rng.normal(size=theta0.size)])
    offsets, curvature = np.array([1.0, 0.8]), 20.0

    def planted(self):
        x = slopes @ (self._parameter_vector() - theta0)
        if calls is not None:
            calls.append(self._parameter_vector())
        out = []
        for entry, c, xi, gi in zip(self.train, offsets, x, slopes):
            y = float(entry.label().reshape(-1)[0])
            error = c + xi + curvature * xi ** 2
            out.append((y * (1 + error / 100), y / 100 * (1 + 2 * curvature * xi) * gi, None))
        return out
    return planted


@pytest.mark.fast
def test_a_step_that_raises_the_loss_is_undone_and_retaken_shorter(tmp_path, monkeypatch):
    """Planted predictions, no SCF: each entry's error (%) is c_i + g_i.theta + K (g_i.theta)^2, so the
    linear model's step overshoots when K is large."""
    import solidxc.train as train
    trainer = _gauss_newton_trainer(tmp_path, DATASET, epochs=6)
    theta0 = trainer._parameter_vector()
    calls = []
    monkeypatch.setattr(train.Trainer, "gradients", _overshooting(trainer, calls))
    trainer.fit()
    first, second = trainer.history[0], trainer.history[1]
    assert first["lambda"] is not None and not first["rejected_previous"]
    assert second["loss"] > first["loss"]  # the planted curvature makes the first step overshoot
    assert second["rejected_previous"] and second["radius"] == pytest.approx(first["radius"] / 2)
    np.testing.assert_array_equal(second["parameters"], first["parameters"])  # undone: it starts where step 1 did
    assert np.abs(np.array(calls[2]) - theta0).max() <= second["radius"] * (1 + 1e-12)
    # Halving until a step lowers the loss; then the run goes on from there, with that trust region.
    losses = [h["loss"] for h in trainer.history]
    accepted = next(k for k, h in enumerate(trainer.history) if k > 1 and not h["rejected_previous"])
    assert losses[accepted] < first["loss"], losses
    assert trainer.history[accepted]["radius"] == trainer.history[accepted - 1]["radius"]


@pytest.mark.fast
def test_the_trust_region_grows_after_steps_the_linear_model_predicted_well(tmp_path, monkeypatch):
    """Planted, exactly linear errors far from zero: every step is held back by the trust region
    and delivers what it promised, so the trust region doubles each epoch up to its cap."""
    import solidxc.train as train
    trainer = _gauss_newton_trainer(tmp_path, DATASET, epochs=6)
    theta0 = trainer._parameter_vector()
    rng = np.random.default_rng(1)
    g = 0.01 * rng.normal(size=theta0.size)
    slopes = np.array([g, g + 0.001 * rng.normal(size=theta0.size)])

    def planted(self):
        x = slopes @ (self._parameter_vector() - theta0)
        return [(float(e.label().reshape(-1)[0]) * (1 + (5.0 + xi) / 100), float(e.label().reshape(-1)[0]) / 100 * gi, None)
                for e, xi, gi in zip(self.train, x, slopes)]
    monkeypatch.setattr(train.Trainer, "gradients", planted)
    trainer.fit()
    radii = [h["radius"] for h in trainer.history]
    assert all(h["damped"] and not h["rejected_previous"] for h in trainer.history)
    step = train.GN_MAX_PARAMETER_STEP
    assert radii == [step, 2 * step, 4 * step, 8 * step, 8 * step, 8 * step][:len(radii)]
    losses = [h["loss"] for h in trainer.history]
    assert all(b < a for a, b in zip(losses, losses[1:]))


@pytest.mark.fast
def test_cached_predictions_that_show_an_overshoot_undo_it_without_gradients(tmp_path, monkeypatch):
    """A final evaluation left every training prediction after the last step in the cache, and they
    show the step raised the loss: the next epoch undoes it from them (no gradient pass) and the
    epoch after re-checks the shorter step with gradients."""
    import solidxc.train as train
    trainer = _gauss_newton_trainer(tmp_path, DATASET, epochs=1)
    planted = _overshooting(trainer)
    monkeypatch.setattr(train.Trainer, "gradients", planted)
    trainer.fit()
    first = trainer.history[0]
    after = planted(trainer)  # what an evaluation at the new parameters finds
    trainer._store_predictions(trainer.train, [value for value, _, _ in after])

    def refuse(self):
        raise AssertionError("no gradient pass is needed to undo a step the cache shows overshot")
    monkeypatch.setattr(train.Trainer, "gradients", refuse)
    trainer.epochs, trainer.start_epoch = 2, 1
    trainer.fit()
    second = trainer.history[1]
    assert second["rejected_previous"] and second["radius"] == pytest.approx(first["radius"] / 2)
    assert second["loss"] > first["loss"]
    np.testing.assert_array_equal(second["parameters"], first["parameters"])
    np.testing.assert_array_equal(second["jacobian"], first["jacobian"])
    # Had the re-taken step raised the loss too, the final evaluation would go back to where both
    # steps started, and report that point's loss (not the overshoot's, which this epoch records).
    trainer._store_predictions(trainer.train, [10 * value for value, _, _ in planted(trainer)])
    saved = trainer._parameter_vector()
    assert trainer.check_last_step()
    assert trainer.rolled_back["loss_before"] == pytest.approx(first["loss"], rel=1e-12)
    np.testing.assert_array_equal(trainer._parameter_vector(), first["parameters"])
    trainer._set_parameter_vector(saved)
    trainer.rolled_back = None
    cache = trainer._read_cache()  # forget the planted overshoot again
    for key in trainer._prediction_keys("trained", trainer.train):
        del cache[key]
    (tmp_path / "out" / "predictions.json").write_text(json.dumps(cache))
    # Without a cached overshoot the gradient pass runs, and stores its predictions for later checks.
    monkeypatch.setattr(train.Trainer, "gradients", planted)
    trainer.epochs, trainer.start_epoch = 3, 2
    trainer.fit()
    assert trainer._cached_training() is None  # the cache holds the epoch's start, not its end
    trainer._set_parameter_vector(np.array(trainer.history[2]["parameters"]))
    assert [v for v, _, _ in trainer._cached_training()] == [v for v, _, _ in planted(trainer)]


@pytest.mark.fast
def test_the_final_evaluation_rolls_back_a_last_step_that_raised_the_training_loss(tmp_path, monkeypatch):
    """``check_last_step``: training predictions after the last step decide (cached here, no SCF);
    a step that raised the loss is not evaluated, one that lowered it is."""
    import solidxc.train as train
    trainer = _gauss_newton_trainer(tmp_path, DATASET, epochs=1)
    planted = _overshooting(trainer)
    monkeypatch.setattr(train.Trainer, "gradients", planted)
    trainer.fit()
    stepped = trainer._parameter_vector()
    trainer._store_predictions(trainer.train, [value for value, _, _ in planted(trainer)])
    assert trainer.check_last_step()
    np.testing.assert_array_equal(trainer._parameter_vector(), trainer.history[-1]["parameters"])
    assert trainer.rolled_back["loss_after"] > trainer.rolled_back["loss_before"] == trainer.history[-1]["loss"]
    text = trainer.markdown([])
    assert "Evaluated at the parameters before epoch 1's step" in text
    # A step that lowered the loss stays.
    trainer._set_parameter_vector(stepped)
    trainer.history[-1]["loss"] = 10 * trainer.rolled_back["loss_after"]
    trainer.history[-1]["base_losses"] = {k: 10 * v for k, v in trainer.history[-1]["base_losses"].items()}
    trainer.rolled_back = None
    assert not trainer.check_last_step()
    np.testing.assert_array_equal(trainer._parameter_vector(), stepped)


@pytest.mark.fast
def test_gradients_in_worker_processes_match_those_in_process(tmp_path):
    """``--jobs 2``: each training entry's prediction and gradient, computed in spawned workers
    from the dataset file and the model's state, are those of the trainer's own process, bit for
    bit (one SCF thread each way)."""
    trainer = _gauss_newton_trainer(tmp_path, DATASET, epochs=1, threads=1, jobs=2,
                                    dataset=str(tmp_path / "d.yaml"))
    with torch.no_grad():  # away from a = 0, where most of the gradient vanishes
        trainer._set_parameter_vector(trainer._parameter_vector() + 0.05)
    spread = trainer.gradients()
    trainer.jobs = 1
    local = trainer.gradients()
    for (a, ga, ea), (b, gb, eb) in zip(spread, local):
        assert ea is None and eb is None
        assert a == b
        np.testing.assert_array_equal(ga, gb)
        assert np.abs(ga).max() > 0

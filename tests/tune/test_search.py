"""Grid and random search on known functions and on a small training run; the results table."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

import deepbox
from deepbox import tune
from deepbox.tune import Choice, IntUniform, LogUniform, Uniform
from tests.tune.workers import bowl, quadratic

SPACE = {"lr": LogUniform(1e-4, 1.0), "depth": IntUniform(1, 5), "act": Choice(["tanh", "relu"])}


def test_dimensions_grid_and_sampling():
    assert np.allclose(LogUniform(1e-4, 1.0).grid(5), [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert Uniform(0, 1).grid(3) == [0.0, 0.5, 1.0]
    assert IntUniform(1, 5).grid(10) == [1, 2, 3, 4, 5] and IntUniform(0, 10).grid(3) == [0, 5, 10]
    assert IntUniform(0, 10, step=5).values() == [0, 5, 10]
    assert Choice(["a", None]).grid(2) == ["a", None]
    rng = random.Random(0)
    logs = [math.log10(LogUniform(1e-4, 1.0).sample(rng)) for _ in range(4000)]
    assert min(logs) >= -4 and max(logs) <= 0
    assert abs(np.mean(logs) + 2) < 0.1, "log-uniform: the logarithm is uniform (mean -2)"
    ints = [IntUniform(1, 3).sample(rng) for _ in range(3000)]
    assert set(ints) == {1, 2, 3} and max(np.bincount(ints)[1:]) < 1100
    for bad in (lambda: LogUniform(0, 1), lambda: Uniform(2, 1), lambda: IntUniform(1, 2.5), lambda: Choice([])):
        with pytest.raises((ValueError, TypeError)):
            bad()


def test_grid_search_finds_the_optimum_and_tabulates():
    res = tune.grid_search(bowl, SPACE, points=5)
    assert len(res) == 5 * 5 * 2
    assert res.best_value == pytest.approx(0.0, abs=1e-20)
    assert res.best_config["depth"] == 3 and res.best_config["act"] == "relu"
    assert res.best_config["lr"] == pytest.approx(1e-2)
    values = [t["value"] for t in res.sorted()]
    assert values == sorted(values) and all(t["status"] == "COMPLETE" for t in res.trials)
    table = res.table()
    lines = table.splitlines()
    assert lines[0].split() == ["trial", "lr", "depth", "act", "value", "status", "seconds"]
    assert len(lines) == 2 + 50
    assert lines[2].split()[1:4] == ["0.01", "3", "relu"], "best trial first"
    assert str(res).startswith("50 trials, 50 complete; minimising 'value'; best value = ")
    recs = res.to_records()
    assert recs[0].keys() >= {"trial", "lr", "depth", "act", "value", "status"}


def test_random_search_approaches_the_optimum_and_is_reproducible():
    space = {"x": Uniform(-1, 1), "y": Uniform(-1, 1), "note": "constant"}
    res = tune.random_search(quadratic, space, n_trials=300, seed=1, metric="loss")
    # 300 uniform draws on [-1, 1]²: the nearest lands within ~0.07 of the optimum on average
    assert res.best_value < 0.03
    assert abs(res.best_config["x"] - 0.3) < 0.2 and abs(res.best_config["y"] + 0.5) < 0.2
    assert res.best_config["note"] == "constant"
    assert res.best["metrics"]["x_plus_y"] == pytest.approx(res.best_config["x"] + res.best_config["y"])
    again = tune.random_search(quadratic, space, n_trials=300, seed=1, metric="loss")
    assert [t["config"] for t in again.trials] == [t["config"] for t in res.trials]
    top = tune.random_search(lambda c: -quadratic(c)["loss"], space, n_trials=50, seed=2, mode="max")
    assert top.best_value == max(t["value"] for t in top.trials)


def test_failures_are_recorded_and_search_continues():
    def objective(config):
        if config["act"] == "tanh":
            raise ValueError("tanh is not wanted here")
        return bowl(config)

    res = tune.Tuner(objective, SPACE).grid(points=2)
    failed = [t for t in res.trials if t["status"] == "FAILED"]
    assert len(failed) == len(res) // 2 and "tanh is not wanted" in failed[0]["error"]
    assert res.best_config["act"] == "relu"
    assert res.table().splitlines()[-1].split()[-2] == "FAILED"
    with pytest.raises(ValueError, match="tanh"):
        tune.Tuner(objective, SPACE, raise_errors=True).grid(points=2)
    with pytest.raises(KeyError, match="without the optimised metric"):
        tune.Tuner(quadratic, {"x": Uniform(0, 1), "y": 0.0}, metric="acc", raise_errors=True).random(1)
    with pytest.raises(RuntimeError, match="no trial completed"):
        _ = tune.Tuner(lambda c: math.nan, {"x": Uniform(0, 1)}).random(2).best_config
    with pytest.raises(ValueError, match="mode must be"):
        tune.Tuner(bowl, SPACE, mode="lowest")


def _train_linear(config: dict) -> dict:
    """Train a 1-layer model on a fixed regression problem with SGD; return the validation loss."""
    deepbox.manual_seed(0)
    g = np.random.default_rng(0)
    X = g.standard_normal((256, 8)).astype(np.float32)
    y = (X @ g.standard_normal(8) + 0.1 * g.standard_normal(256)).astype(np.float32)[:, None]
    Xt, yt = deepbox.tensor(X[:192]), deepbox.tensor(y[:192])
    Xv, yv = deepbox.tensor(X[192:]), deepbox.tensor(y[192:])
    model = deepbox.nn.Linear(8, 1)
    opt = deepbox.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    with np.errstate(all="ignore"):  # the largest learning rates diverge on purpose
        return _fit(model, opt, config, Xt, yt, Xv, yv)


def _fit(model, opt, config, Xt, yt, Xv, yv):
    for _ in range(config["epochs"]):
        for i in range(0, 192, 32):
            opt.zero_grad()
            loss = deepbox.nn.functional.mse_loss(model(Xt[i:i + 32]), yt[i:i + 32])
            loss.backward()
            opt.step()
    with deepbox.no_grad():
        return {"val_loss": float(deepbox.nn.functional.mse_loss(model(Xv), yv)), "train_loss": float(loss)}


def test_search_over_a_training_run_prefers_a_working_learning_rate():
    space = {"lr": LogUniform(1e-4, 10.0), "momentum": Choice([0.0, 0.9]), "epochs": 5}
    res = tune.grid_search(_train_linear, space, points=6, metric="val_loss")
    assert len(res) == 12
    best = res.best_config
    assert 1e-2 <= best["lr"] <= 1.0, best
    assert res.best_value < 0.05
    tiny = [t for t in res.trials if t["config"]["lr"] == pytest.approx(1e-4)]
    assert all(t["value"] > 10 * res.best_value for t in tiny)
    # lr = 10 diverges: recorded as FAILED (NaN or overflow), not as the best
    huge = [t for t in res.trials if t["config"]["lr"] == pytest.approx(10.0)]
    assert all(t["status"] == "FAILED" or t["value"] > 1 for t in huge)

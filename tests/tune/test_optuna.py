"""The Optuna backend: the same objective and space, and one study shared by several worker processes."""
from __future__ import annotations

import multiprocessing as mp

import optuna
import pytest

from deepbox import tune
from deepbox.tune import Choice, IntUniform, LogUniform, Uniform
from tests.tune.workers import bowl, optuna_worker


def test_optuna_search_in_memory_finds_the_optimum():
    space = {"lr": LogUniform(1e-4, 1.0), "depth": IntUniform(1, 5), "act": Choice(["tanh", "relu"])}
    res = tune.optuna_search(bowl, space, n_trials=40, seed=0)
    assert len(res) == 40 and all(t["status"] == "COMPLETE" for t in res.trials)
    assert res.best_value < 0.1
    assert res.best_config["depth"] == 3 and res.best_config["act"] == "relu"
    assert "lr" in res.table().splitlines()[0]


def test_failed_trials_are_kept(tmp_path):
    def objective(config):
        if config["x"] > 0.5:
            raise RuntimeError("x too large")
        return config["x"]

    url = f"sqlite:///{tmp_path / 'fail.db'}"
    res = tune.optuna_search(objective, {"x": Uniform(0, 1)}, n_trials=12, storage=url, study_name="f",
                             sampler="random", seed=0)
    n_failed = sum(t["status"] == "FAILED" for t in res.trials)
    assert 0 < n_failed < 12
    stored = tune.study_results(url, "f")
    assert sum(t["status"] == "FAILED" for t in stored.trials) == n_failed
    assert any("x too large" in (t["error"] or "") for t in stored.trials)
    with pytest.raises(ValueError, match="study_name is required"):
        tune.create_study("sqlite:///x.db")


def test_worker_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = tune.create_study(url, "shared", mode="min")  # created once, joined by every worker
    ctx = mp.get_context("spawn")  # fresh interpreters, like workers on other machines
    with ctx.Pool(3) as pool:
        counts = pool.starmap(optuna_worker, [(url, "shared", 5, seed) for seed in range(3)])
    assert counts == [5, 5, 5]
    trials = optuna.load_study(study_name="shared", storage=url).get_trials()
    assert len(trials) == 15
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(15))
    res = tune.study_results(url, "shared", metric="loss")
    assert len(res) == 15 and res.mode == "min"
    assert res.best_value == min(t.value for t in trials) == study.best_value
    assert res.best_config["tag"] == "shared" and set(res.best_config) == {"x", "y", "tag"}
    assert "x_plus_y" in res.table().splitlines()[0]

"""Objectives and a worker entry point for the tune tests, importable by spawned worker processes."""
from __future__ import annotations

import math


def bowl(config: dict) -> float:
    """A known function with its minimum 0 at lr = 1e-2, depth = 3, act = 'relu'."""
    return (math.log10(config["lr"]) + 2) ** 2 + (config["depth"] - 3) ** 2 + (0.0 if config["act"] == "relu" else 1.0)


def quadratic(config: dict) -> dict:
    x, y = config["x"], config["y"]
    return {"loss": (x - 0.3) ** 2 + (y + 0.5) ** 2, "x_plus_y": x + y}


def optuna_worker(storage: str, study_name: str, n_trials: int, seed: int) -> int:
    from deepbox.tune import Uniform, optuna_search

    res = optuna_search(quadratic, {"x": Uniform(-1, 1), "y": Uniform(-1, 1), "tag": "shared"}, n_trials=n_trials,
                        storage=storage, study_name=study_name, metric="loss", mode="min", seed=seed)
    return len(res)

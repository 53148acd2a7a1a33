"""``deepbox.tune``: hyperparameter search over declared spaces.

Grid and random search run in this process (``grid_search``, ``random_search``, ``Tuner``); the same search
through Optuna (``optuna_search``, needs the ``tune`` extra) records trials in a storage that several
processes or machines can share. Each returns :class:`Results`: the trials as dicts, a printable table and
the best configuration.
"""
from __future__ import annotations

from deepbox.tune.search import Results, Tuner, grid_configs, grid_search, random_configs, random_search
from deepbox.tune.space import Choice, Dimension, IntUniform, LogUniform, Uniform


def __getattr__(name):
    # Optuna is optional: import the backend only when it is asked for
    if name in ("optuna_search", "study_results", "create_study"):
        from deepbox.tune import optuna_backend

        return getattr(optuna_backend, name)
    raise AttributeError(f"module 'deepbox.tune' has no attribute {name!r}")


__all__ = ["Uniform", "LogUniform", "IntUniform", "Choice", "Dimension", "Tuner", "Results", "grid_search",
           "random_search", "grid_configs", "random_configs", "optuna_search", "study_results", "create_study"]

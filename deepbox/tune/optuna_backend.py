"""The same search through Optuna, whose storage lets many processes or machines share one study.

Optuna (``pip install deepbox[tune]``) proposes configurations with a sampler (TPE by default, or random)
and records every trial in a storage. With a database URL as storage, any number of workers, in separate
processes or on separate machines, can run ``optuna_search`` with the same ``study_name``: each asks the
database for the study's history, proposes a trial, and writes its result back, so no trial is lost and
the sampler learns from all workers. SQLite (``"sqlite:///study.db"``) serves processes on one machine;
a server database (``"postgresql://user@host/db"``) serves several machines.

    # in each worker process (same storage and study name, different seeds):
    results = optuna_search(objective, space, n_trials=20, storage="sqlite:///study.db",
                            study_name="mlp-lr", mode="min", seed=worker_id)
    # anywhere, afterwards: all trials of all workers
    print(study_results("sqlite:///study.db", "mlp-lr"))
"""
from __future__ import annotations

import json
import math

from deepbox.tune.search import Results, _check_mode, run_trial
from deepbox.tune.space import Dimension, check_space


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("deepbox.tune.optuna_search needs Optuna: pip install 'deepbox[tune]' (or optuna)") from None
    return optuna


def _storage(storage):
    """An Optuna storage: SQLite URLs get a generous lock timeout, so concurrent writers wait instead of failing."""
    optuna = _optuna()
    if isinstance(storage, str) and storage.startswith("sqlite:"):
        return optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 120}})
    return storage


def create_study(storage=None, study_name: str | None = None, *, mode: str = "min", sampler: str = "tpe",
                 seed: int | None = None, load_if_exists: bool = True):
    """Create (or join, with ``load_if_exists``) an Optuna study.

    Args:
        storage: None (in memory, this process only), a database URL such as ``"sqlite:///study.db"``, or an
            Optuna storage object.
        study_name: the name workers share; required with a storage.
        mode: 'min' or 'max'. sampler: 'tpe' or 'random'. seed: the sampler's seed (give each worker its own).
    """
    optuna = _optuna()
    _check_mode(mode)
    if storage is not None and study_name is None:
        raise ValueError("create_study: a study_name is required with a storage, so that workers can share it")
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if sampler not in samplers:
        raise ValueError(f"create_study: sampler must be one of {sorted(samplers)}, got {sampler!r}")
    return optuna.create_study(storage=_storage(storage), study_name=study_name, load_if_exists=load_if_exists,
                               direction="minimize" if mode == "min" else "maximize",
                               sampler=samplers[sampler](seed=seed))


def _jsonable(v):
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def optuna_search(objective, space: dict, *, n_trials: int = 20, storage=None, study_name: str | None = None,
                  metric: str = "value", mode: str = "min", sampler: str = "tpe", seed: int | None = None,
                  timeout: float | None = None, raise_errors: bool = False, verbose: bool = False) -> Results:
    """Run ``n_trials`` trials of ``objective(config)`` proposed by Optuna; return this worker's Results.

    ``space`` is the same dict as for ``random_search``; the objective is the same function. A failed
    trial is recorded as FAILED (in Optuna: FAIL) and the search continues unless ``raise_errors``.
    Use :func:`study_results` to see the trials of every worker of a shared study.
    """
    optuna = _optuna()
    check_space(space)
    if not (isinstance(n_trials, int) and n_trials >= 1):
        raise ValueError(f"optuna_search: n_trials must be an int >= 1, got {n_trials!r}")
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(storage, study_name, mode=mode, sampler=sampler, seed=seed)
    constants = {k: v for k, v in space.items() if not isinstance(v, Dimension)}
    mine = []

    def optuna_objective(trial):
        config = {k: (d.suggest(trial, k) if isinstance(d, Dimension) else d) for k, d in space.items()}
        rec = run_trial(objective, config, trial.number, metric, raise_errors)
        rec["trial"] = trial.number
        mine.append(rec)
        trial.set_user_attr("metrics", {k: _jsonable(v) for k, v in rec["metrics"].items()})
        trial.set_user_attr("seconds", rec["seconds"])
        if constants:
            trial.set_user_attr("constants", {k: _jsonable(v) for k, v in constants.items()})
        if rec["status"] == "FAILED":
            trial.set_user_attr("error", rec["error"])
            raise _TrialFailed(rec["error"])
        if rec["value"] is None or math.isnan(rec["value"]):
            raise _TrialFailed(f"the objective returned {rec['value']}")
        if verbose:
            print(f"trial {trial.number}: {config} -> {metric} = {rec['value']:.6g}")
        return rec["value"]

    study.optimize(optuna_objective, n_trials=n_trials, timeout=timeout, catch=(_TrialFailed,))
    return Results(mine, metric, mode)


class _TrialFailed(Exception):
    """Tells Optuna that a trial failed (its error is kept in the trial's user attributes)."""


def study_results(study_or_storage, study_name: str | None = None, *, metric: str = "value") -> Results:
    """All trials of a study (from every worker) as :class:`Results`.

    Args:
        study_or_storage: an Optuna study, or a storage URL/object together with ``study_name``.
    """
    optuna = _optuna()
    if isinstance(study_or_storage, optuna.Study):
        study = study_or_storage
    else:
        if study_name is None:
            raise ValueError("study_results: give study_name together with a storage")
        study = optuna.load_study(study_name=study_name, storage=_storage(study_or_storage))
    mode = "min" if study.direction == optuna.study.StudyDirection.MINIMIZE else "max"
    states = {optuna.trial.TrialState.COMPLETE: "COMPLETE", optuna.trial.TrialState.FAIL: "FAILED",
              optuna.trial.TrialState.RUNNING: "RUNNING", optuna.trial.TrialState.PRUNED: "PRUNED",
              optuna.trial.TrialState.WAITING: "WAITING"}
    trials = []
    for t in study.get_trials(deepcopy=False):
        config = {**t.params, **t.user_attrs.get("constants", {})}
        seconds = t.user_attrs.get("seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        trials.append({"trial": t.number, "config": config, "value": t.value,
                       "metrics": t.user_attrs.get("metrics", {} if t.value is None else {metric: t.value}),
                       "status": states.get(t.state, str(t.state)), "error": t.user_attrs.get("error"),
                       "seconds": seconds if seconds is not None else math.nan})
    trials.sort(key=lambda r: r["trial"])
    return Results(trials, metric, mode)


"""Grid search and random search: run an objective on configurations and tabulate the results.

The objective is any function ``objective(config) -> float`` (or ``-> dict`` of metrics, one of which is
optimised), for example one that builds a model from ``config``, trains it with ``deepbox.train.Trainer``
or a plain loop, and returns the validation loss. A failing trial is recorded with its error and the
search goes on.

    >>> from deepbox.tune import Choice, LogUniform, random_search
    >>> def train_and_validate(config):    # returns the validation loss of one run
    ...     return (config["lr"] - 0.01) ** 2 + config["hidden"] / 1000
    >>> space = {"lr": LogUniform(1e-4, 1e-1), "hidden": Choice([32, 64])}
    >>> results = random_search(train_and_validate, space, n_trials=20, mode="min", seed=0)
    >>> results.best_config["hidden"]
    32
"""
from __future__ import annotations

import itertools
import math
import random
import time
import traceback

from deepbox.tune.space import Dimension, check_space


class Results:
    """The trials of one search: ``trials`` (list of dicts), ``table()``, ``best_config``, ``best_value``.

    Each trial dict has ``trial`` (its number), ``config``, ``value`` (the optimised metric, None if the
    trial failed), ``metrics`` (everything the objective returned), ``status`` ('COMPLETE' or 'FAILED'),
    ``error`` and ``seconds``.
    """

    def __init__(self, trials: list[dict], metric: str, mode: str):
        self.trials = trials
        self.metric = metric
        self.mode = mode

    def _done(self):
        return [t for t in self.trials if t["status"] == "COMPLETE" and t["value"] is not None
                and not math.isnan(t["value"])]

    def sorted(self) -> list[dict]:
        """Completed trials, best first."""
        return sorted(self._done(), key=lambda t: t["value"], reverse=self.mode == "max")

    @property
    def best(self) -> dict:
        done = self.sorted()
        if not done:
            raise RuntimeError(f"no trial completed ({len(self.trials)} ran); see the 'error' of each trial")
        return done[0]

    @property
    def best_config(self) -> dict:
        return dict(self.best["config"])

    @property
    def best_value(self) -> float:
        return self.best["value"]

    def to_records(self) -> list[dict]:
        """One flat dict per trial (config keys, metric keys, status), e.g. for a CSV or a DataFrame."""
        rows = []
        for t in self.trials:
            row = {"trial": t["trial"], **t["config"], **{k: v for k, v in t["metrics"].items()},
                   "status": t["status"], "seconds": t["seconds"]}
            rows.append(row)
        return rows

    def table(self, max_rows: int | None = None) -> str:
        """A text table of the trials, best first (failed trials last)."""
        rows = self.sorted() + [t for t in self.trials if t not in self._done()]
        if max_rows is not None:
            rows = rows[:max_rows]
        keys = []
        for t in self.trials:
            keys.extend(k for k in t["config"] if k not in keys)
        mkeys = []
        for t in self.trials:
            mkeys.extend(k for k in t["metrics"] if k not in mkeys and k not in keys)
        header = ["trial", *keys, *mkeys, "status", "seconds"]
        lines = [[str(t["trial"]), *(_fmt(t["config"].get(k, "")) for k in keys),
                  *(_fmt(t["metrics"].get(k, "")) for k in mkeys), t["status"], f"{t['seconds']:.2f}"] for t in rows]
        widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h) for i, h in enumerate(header)]
        out = ["  ".join(h.rjust(w) for h, w in zip(header, widths)),
               "  ".join("-" * w for w in widths)]
        out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines]
        return "\n".join(out)

    def __len__(self) -> int:
        return len(self.trials)

    def __str__(self) -> str:
        head = f"{len(self.trials)} trials, {len(self._done())} complete; {self.mode}imising {self.metric!r}"
        if self._done():
            head += f"; best {self.metric} = {_fmt(self.best_value)} with {self.best_config}"
        return head + "\n" + self.table()

    __repr__ = __str__


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _check_mode(mode: str) -> str:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


def run_trial(objective, config: dict, number: int, metric: str, raise_errors: bool = False) -> dict:
    """Run ``objective(config)`` once and record the outcome as a trial dict."""
    start = time.perf_counter()
    record = {"trial": number, "config": dict(config), "value": None, "metrics": {}, "status": "COMPLETE",
              "error": None}
    try:
        out = objective(dict(config))
        if isinstance(out, dict):
            if metric not in out:
                raise KeyError(f"the objective returned metrics {sorted(out)} without the optimised metric "
                               f"{metric!r}")
            record["metrics"] = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in out.items()}
            record["value"] = float(out[metric])
        else:
            record["value"] = float(out)
            record["metrics"] = {metric: record["value"]}
        if math.isnan(record["value"]):
            raise FloatingPointError(f"the objective returned NaN for {metric!r} (diverged?)")
    except Exception as e:  # noqa: BLE001 - a failing configuration is a result, not the end of the search
        if raise_errors:
            raise
        record["status"] = "FAILED"
        record["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
    record["seconds"] = time.perf_counter() - start
    return record


def grid_configs(space: dict, points: int = 3) -> list[dict]:
    """Every combination of the dimensions' grids (``points`` values per continuous dimension)."""
    check_space(space)
    if not (isinstance(points, int) and points >= 1):
        raise ValueError(f"points must be an int >= 1, got {points!r}")
    names = list(space)
    axes = [space[k].grid(points) if isinstance(space[k], Dimension) else [space[k]] for k in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*axes)]


def random_configs(space: dict, n_trials: int, seed: int | None = None) -> list[dict]:
    """``n_trials`` configurations drawn independently from the space (reproducible for a given seed)."""
    check_space(space)
    if not (isinstance(n_trials, int) and n_trials >= 1):
        raise ValueError(f"n_trials must be an int >= 1, got {n_trials!r}")
    rng = random.Random(seed)
    return [{k: (d.sample(rng) if isinstance(d, Dimension) else d) for k, d in space.items()}
            for _ in range(n_trials)]


class Tuner:
    """Run an objective over configurations and collect :class:`Results`.

    Args:
        objective: ``objective(config) -> float`` or ``-> dict`` of metrics.
        space: ``{name: Uniform/LogUniform/IntUniform/Choice or a constant}``.
        metric: the name of the optimised value (a key of the returned dict; just a label for a float).
        mode: 'min' or 'max'.
        raise_errors: re-raise an objective's exception instead of recording a FAILED trial.
        verbose: print one line per trial.
    """

    def __init__(self, objective, space: dict, *, metric: str = "value", mode: str = "min",
                 raise_errors: bool = False, verbose: bool = False):
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        self.objective = objective
        self.space = check_space(space)
        self.metric = metric
        self.mode = _check_mode(mode)
        self.raise_errors = raise_errors
        self.verbose = verbose

    def run(self, configs) -> Results:
        """Run the objective on each configuration in turn."""
        trials = []
        for i, config in enumerate(configs):
            rec = run_trial(self.objective, config, i, self.metric, self.raise_errors)
            trials.append(rec)
            if self.verbose:
                shown = _fmt(rec["value"]) if rec["status"] == "COMPLETE" else rec["error"]
                print(f"trial {i}: {config} -> {self.metric} = {shown} ({rec['seconds']:.2f}s)")
        return Results(trials, self.metric, self.mode)

    def grid(self, points: int = 3) -> Results:
        """Grid search: every combination, ``points`` values per continuous dimension."""
        return self.run(grid_configs(self.space, points))

    def random(self, n_trials: int, seed: int | None = None) -> Results:
        """Random search: ``n_trials`` independent draws (Bergstra & Bengio 2012: usually better than a grid
        with the same budget when only a few hyperparameters matter)."""
        return self.run(random_configs(self.space, n_trials, seed))


def grid_search(objective, space: dict, *, points: int = 3, metric: str = "value", mode: str = "min",
                raise_errors: bool = False, verbose: bool = False) -> Results:
    """Evaluate ``objective`` on every grid point of ``space``; see :class:`Tuner`."""
    return Tuner(objective, space, metric=metric, mode=mode, raise_errors=raise_errors, verbose=verbose).grid(points)


def random_search(objective, space: dict, *, n_trials: int = 20, seed: int | None = None, metric: str = "value",
                  mode: str = "min", raise_errors: bool = False, verbose: bool = False) -> Results:
    """Evaluate ``objective`` on ``n_trials`` random configurations of ``space``; see :class:`Tuner`."""
    return Tuner(objective, space, metric=metric, mode=mode, raise_errors=raise_errors,
                 verbose=verbose).random(n_trials, seed)

"""Search spaces: the distributions a hyperparameter is drawn from.

Each dimension can be sampled (random search), enumerated on a grid (grid search) and declared to Optuna
(``suggest``). A space is a dict ``{name: dimension}``; plain values in it are constants passed through.
"""
from __future__ import annotations

import math
import random


class Dimension:
    """One hyperparameter's set of values."""

    def sample(self, rng: random.Random):  # pragma: no cover - abstract
        raise NotImplementedError

    def grid(self, n: int) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def suggest(self, trial, name: str):  # pragma: no cover - abstract
        raise NotImplementedError


def _check_range(cls: str, low, high, positive: bool = False) -> None:
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float))):
        raise TypeError(f"{cls}: low and high must be numbers, got {low!r} and {high!r}")
    if not low < high:
        raise ValueError(f"{cls}: low must be below high, got low={low!r}, high={high!r}")
    if positive and low <= 0:
        raise ValueError(f"{cls}: low must be > 0 for a logarithmic scale, got {low!r}")


class Uniform(Dimension):
    """A float drawn uniformly from ``[low, high]``; its grid is evenly spaced."""

    def __init__(self, low: float, high: float):
        _check_range("Uniform", low, high)
        self.low, self.high = float(low), float(high)

    def sample(self, rng):
        return rng.uniform(self.low, self.high)

    def grid(self, n):
        if n == 1:
            return [(self.low + self.high) / 2]
        return [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)]

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high)

    def __repr__(self):
        return f"Uniform({self.low:g}, {self.high:g})"


class LogUniform(Dimension):
    """A positive float whose logarithm is uniform on ``[log low, log high]`` (learning rates, weight decay)."""

    def __init__(self, low: float, high: float):
        _check_range("LogUniform", low, high, positive=True)
        self.low, self.high = float(low), float(high)

    def sample(self, rng):
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))

    def grid(self, n):
        a, b = math.log(self.low), math.log(self.high)
        if n == 1:
            return [math.exp((a + b) / 2)]
        return [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high, log=True)

    def __repr__(self):
        return f"LogUniform({self.low:g}, {self.high:g})"


class IntUniform(Dimension):
    """An int from ``low`` to ``high`` inclusive (in steps of ``step``), each equally likely."""

    def __init__(self, low: int, high: int, step: int = 1):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, step)):
            raise TypeError(f"IntUniform: low, high and step must be ints, got {low!r}, {high!r}, {step!r}")
        _check_range("IntUniform", low, high)
        if step < 1:
            raise ValueError(f"IntUniform: step must be >= 1, got {step}")
        self.low, self.high, self.step = low, high, step

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def sample(self, rng):
        return rng.choice(self.values())

    def grid(self, n):
        vals = self.values()
        if n >= len(vals):
            return vals
        # n values spread over the range, always including both ends
        picks = sorted({round(i * (len(vals) - 1) / (n - 1)) for i in range(n)}) if n > 1 else [len(vals) // 2]
        return [vals[i] for i in picks]

    def suggest(self, trial, name):
        return trial.suggest_int(name, self.low, self.high, step=self.step)

    def __repr__(self):
        return f"IntUniform({self.low}, {self.high}{', step=' + str(self.step) if self.step != 1 else ''})"


class Choice(Dimension):
    """One of a list of options (numbers, strings, None, booleans); a grid takes all of them."""

    def __init__(self, options):
        options = list(options)
        if not options:
            raise ValueError("Choice: options must not be empty")
        self.options = options

    def sample(self, rng):
        return rng.choice(self.options)

    def grid(self, n):
        return list(self.options)

    def suggest(self, trial, name):
        return trial.suggest_categorical(name, self.options)

    def __repr__(self):
        return f"Choice({self.options!r})"


def check_space(space) -> dict:
    """Validate ``space``: a non-empty dict of names to dimensions (or constants)."""
    if not isinstance(space, dict) or not space:
        raise TypeError(f"a search space must be a non-empty dict {{name: dimension}}, got {space!r}")
    for k in space:
        if not isinstance(k, str):
            raise TypeError(f"search space names must be strings, got {k!r}")
    return space

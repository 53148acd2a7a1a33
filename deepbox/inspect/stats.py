"""Summary statistics of one array, as the inspector records them per layer.

``summarize(a)`` gives the mean, standard deviation, extremes, the fraction of exact zeros (dead
ReLU units), the fraction of saturated units where the layer has a saturating range (a sigmoid
near 0 or 1, a tanh near -1 or 1: there the local gradient is below about 0.01) and a histogram
with ``BINS`` equal bins between the finite minimum and maximum. Non-finite values are counted,
not summarised, so one NaN does not hide the rest.

The extremes and the count of non-finite values are exact. An array of more than ``SAMPLE``
elements (a convolution's output for a batch has millions) is summarised from ``SAMPLE`` elements
drawn uniformly at random, the same positions for every array of that size: the mean's error is
then about std / 256, far below what a histogram shows, and a recorded step costs about two plain
steps instead of ten (``benchmarks/bench_inspector.py``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BINS", "SAMPLE", "SATURATION", "summarize", "saturation_range"]

BINS = 32
SAMPLE = 1 << 16
_SAMPLE_INDEX: dict[int, np.ndarray] = {}

# (low, high): a unit is saturated when its output is <= low or >= high. The bounds are where the
# local derivative falls under ~1 % of its peak: sigmoid' = s(1 - s) < 0.0099 outside [0.01, 0.99].
SATURATION = {
    "Sigmoid": (0.01, 0.99),
    "Tanh": (-0.99, 0.99),
    "Hardtanh": None,  # its own bounds, read from the module
    "ReLU6": (0.0, 6.0),
    "Hardsigmoid": (0.0, 1.0),
    "Softsign": (-0.99, 0.99),
}


def saturation_range(module) -> tuple[float, float] | None:
    """The (low, high) bounds outside which ``module``'s output counts as saturated, or None."""
    name = type(module).__name__
    if name == "Hardtanh":
        return float(module.min_val), float(module.max_val)
    return SATURATION.get(name)


def _f(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _sample(flat: np.ndarray, size: int) -> np.ndarray:
    n = flat.size
    if n <= size:
        return flat
    idx = _SAMPLE_INDEX.get(n)
    if idx is None or len(idx) != size:
        if len(_SAMPLE_INDEX) > 64:
            _SAMPLE_INDEX.clear()
        # sorted positions: the gather walks memory forwards
        idx = _SAMPLE_INDEX[n] = np.sort(np.random.default_rng(n).integers(0, n, size))
    return flat[idx]


def _histogram(flat: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """``numpy.histogram(flat, bins, range=(lo, hi))[0]`` for values known to lie in [lo, hi], ~10x faster."""
    dt = flat.dtype if flat.dtype.kind == "f" else np.float64
    idx = ((flat - dt.type(lo)) * dt.type(bins / (hi - lo))).astype(np.intp)
    np.clip(idx, 0, bins - 1, out=idx)
    return np.bincount(idx, minlength=bins)


def summarize(a: np.ndarray, saturation: tuple[float, float] | None = None, bins: int = BINS,
              sample: int = SAMPLE) -> dict:
    """Statistics of ``a`` (any shape) as a JSON-ready dict.

    Keys: ``n``, ``mean``, ``std`` (population), ``min``, ``max``, ``zeros`` (fraction exactly 0),
    ``sat`` (fraction at or beyond ``saturation``, None without one), ``nonfinite`` (count),
    ``lo``, ``hi``, ``hist`` (``bins`` counts of the finite values over ``[lo, hi]``, the last bin
    closed, as ``numpy.histogram``), ``m`` (how many values the mean, std, fractions and histogram
    were computed from: all finite values, or ``sample`` of them).
    """
    a = np.asarray(a)
    # memory order: a view even for a channels-last array seen as (N, C, H, W); reshape(-1) would copy
    flat = a.ravel(order="K")
    n = int(flat.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "zeros": None, "sat": None,
                "nonfinite": 0, "lo": 0.0, "hi": 0.0, "hist": [0] * bins, "m": 0}
    lo, hi = float(flat.min()), float(flat.max())
    nonfinite = 0
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN and inf propagate to the extremes
        finite = np.isfinite(flat)
        nonfinite = n - int(np.count_nonzero(finite))
        flat = flat[finite]
        if flat.size == 0:
            return {"n": n, "mean": None, "std": None, "min": None, "max": None, "zeros": 0.0, "sat": None,
                    "nonfinite": nonfinite, "lo": 0.0, "hi": 0.0, "hist": [0] * bins, "m": 0}
        lo, hi = float(flat.min()), float(flat.max())
    flat = _sample(flat, sample)
    m = flat.size
    # accumulate in float64: a float32 sum of many activations loses digits
    mean = float(flat.mean(dtype=np.float64))
    std = float(flat.std(dtype=np.float64))
    zeros = (m - int(np.count_nonzero(flat))) / m
    sat = None
    if saturation is not None:
        sat = int(np.count_nonzero((flat <= saturation[0]) | (flat >= saturation[1]))) / m
    if hi > lo:
        hist = _histogram(flat, lo, hi, bins)
    else:  # all equal: everything in the middle bin
        hist = np.zeros(bins, dtype=np.int64)
        hist[bins // 2] = m
    return {"n": n, "mean": _f(mean), "std": _f(std), "min": _f(lo), "max": _f(hi), "zeros": zeros, "sat": sat,
            "nonfinite": nonfinite, "lo": lo, "hi": hi, "hist": hist.tolist(), "m": int(m)}

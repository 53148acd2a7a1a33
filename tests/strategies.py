"""Hypothesis strategies: shapes, broadcastable pairs, and non-contiguous layouts of the same values."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@st.composite
def broadcastable_pair(draw):
    """Two shapes that broadcast together: the second drops leading dims and sets some to 1."""
    a = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    k = draw(st.integers(0, len(a)))
    b = list(a[len(a) - k:])
    for i in range(len(b)):
        if draw(st.booleans()):
            b[i] = 1
    if draw(st.booleans()):
        return tuple(b), a
    return a, tuple(b)


@st.composite
def arrays(draw, shape, lo=-3.0, hi=3.0):
    seed = draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed).uniform(lo, hi, shape)


@st.composite
def layouts(draw, arr):
    """The same values as ``arr`` laid out contiguously, transposed, sliced from a larger array, or expanded."""
    kind = draw(st.sampled_from(["contiguous", "transposed", "sliced"] + (["expanded"] if arr.ndim else [])))
    if kind == "transposed" and arr.ndim >= 2:
        return np.ascontiguousarray(arr.swapaxes(0, -1)).swapaxes(0, -1)
    if kind == "sliced":
        big = np.zeros(tuple(2 * s for s in arr.shape))
        big[tuple(slice(None, None, 2) for _ in arr.shape)] = arr
        return big[tuple(slice(None, None, 2) for _ in arr.shape)]
    if kind == "expanded" and arr.ndim:
        first = arr[:1]
        return np.broadcast_to(first, arr.shape) if np.all(arr == first) else arr
    return arr

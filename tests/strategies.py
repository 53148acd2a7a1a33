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


# ----------------------------------------------------------------------------- edges: the shapes and arguments
# that silent wrong results hid in (issue 20): zero-size dimensions, 0-d tensors, cropping pads, mixed indexing

# shapes with zero-size dimensions and 0-d tensors among the ordinary ones
edge_shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)

# every integer dtype that PyTorch computes with (uint16/32/64 are storage types there: see tests/test_edges.py)
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")
int_dtypes = st.sampled_from(INT_DTYPES)


@st.composite
def int_arrays(draw, shape, dtype):
    """Integers that fit ``dtype`` (non-negative for uint8), small enough that products do not overflow."""
    seed = draw(st.integers(0, 2**31 - 1))
    lo = 0 if dtype.startswith("u") else -9
    return np.random.default_rng(seed).integers(lo, 10, shape).astype(dtype)


@st.composite
def pads(draw, shape, mode):
    """``F.pad`` widths for ``shape`` and ``mode``, negative (cropping) ones included.

    Non-constant modes pad the last 1-3 dimensions of a (batch,) channel, spatial... input and keep
    every output size >= 1; reflect keeps each width below its dimension's size; circular keeps each
    positive width within the cropped size, as PyTorch requires.
    """
    nd = len(shape)
    if mode == "constant":
        k = draw(st.integers(1, nd))
    else:  # the last 1-3 dimensions of an input with one or two more (channel, or batch and channel)
        k = draw(st.sampled_from([j for j in (nd - 1, nd - 2) if 1 <= j <= 3]))
    out = []
    for ax in range(nd - 1, nd - 1 - k, -1):
        n = shape[ax]
        if mode == "constant":
            lo = draw(st.integers(-n, 3))
            hi = draw(st.integers(-(n - max(-lo, 0)), 3))
        elif mode == "circular":
            lo = draw(st.integers(-n, n))
            hi = draw(st.integers(-(n - max(-lo, 0)), n))
            m = n - max(-lo, 0) - max(-hi, 0)
            lo, hi = min(lo, m), min(hi, m)
        else:
            top = n - 1 if mode == "reflect" else n + 2
            lo = draw(st.integers(-(n - 1), top))
            hi = draw(st.integers(max(-(n - 1), 1 - n - lo), top))
        out += [lo, hi]
    return tuple(out)


@st.composite
def index_specs(draw, shape):
    """A mixed basic/advanced index for ``shape`` as a list of parts, built per framework by ``make_index``.

    Parts: ("int", i) with negatives, ("slice", (start, stop, step)) with steps and start > stop,
    ("tensor", int array) with negative and repeated entries, ("mask", bool array), ("none",), ("ellipsis",).
    Each dimension gets a part in order (the last ones may be left out); a run of whole-dimension slices
    may become one ``...``, and ``None`` goes anywhere.
    """
    parts = []
    for n in shape[:draw(st.integers(0, len(shape)))]:
        kind = draw(st.sampled_from(["int", "slice", "all", "tensor", "tensor", "mask"]))
        if kind == "int" and n:
            parts.append(("int", draw(st.integers(-n, n - 1))))
        elif kind == "tensor" and n:
            ishape = draw(st.sampled_from([(), (1,), (2,), (1, 2), (2, 1), (0,)]))
            seed = draw(st.integers(0, 2**31 - 1))
            parts.append(("tensor", np.random.default_rng(seed).integers(-n, n, ishape)))
        elif kind == "mask":
            seed = draw(st.integers(0, 2**31 - 1))
            parts.append(("mask", np.random.default_rng(seed).random(n) < 0.5))
        elif kind == "all":
            parts.append(("slice", (None, None, 1)))
        else:
            start = draw(st.integers(-n - 1, n + 1) | st.none())
            stop = draw(st.integers(-n - 1, n + 1) | st.none())
            parts.append(("slice", (start, stop, draw(st.integers(1, 3)))))
    parts += [("slice", (None, None, 1))] * (len(shape) - len(parts))
    if draw(st.booleans()):  # one `...` for a run (maybe empty) of whole-dimension slices
        i = draw(st.integers(0, len(parts)))
        j = i
        while j < len(parts) and parts[j] == ("slice", (None, None, 1)) and draw(st.booleans()):
            j += 1
        parts[i:j] = [("ellipsis",)]
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), ("none",))
    if draw(st.booleans()):  # trailing whole-dimension slices may be left out
        while parts and parts[-1] == ("slice", (None, None, 1)):
            parts.pop()
    return parts


def make_index(parts, tensor):
    """The index tuple that ``parts`` (from ``index_specs``) describes, with ``tensor`` making the tensors."""
    key = []
    for p in parts:
        kind = p[0]
        if kind == "int":
            key.append(p[1])
        elif kind in ("tensor", "mask"):
            key.append(tensor(p[1]))
        elif kind == "slice":
            key.append(slice(*p[1]))
        elif kind == "none":
            key.append(None)
        else:
            key.append(Ellipsis)
    return tuple(key)

"""Property-based tests: broadcasting and non-contiguous inputs, checked against PyTorch."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import deepbox
from tests.helpers import assert_close
from tests.strategies import arrays, broadcastable_pair, layouts, shapes

BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / (y.abs() + 0.5),
    "maximum": lambda x, y: x.maximum(y),
}


def _run(fn, arrs):
    d = [deepbox.tensor(np.array(a), requires_grad=True) for a in arrs]
    t = [torch.tensor(np.array(a), requires_grad=True) for a in arrs]
    # feed the layout itself (possibly non-contiguous) to deepbox
    for dt, arr in zip(d, arrs):
        dt._data = arr
    od, ot = fn(*d), fn(*t)
    assert_close(od, ot)
    cot = np.random.default_rng(1).standard_normal(ot.shape)
    od.backward(deepbox.tensor(cot))
    ot.backward(torch.tensor(cot))
    for a, b in zip(d, t):
        assert a.grad.shape == a.shape
        assert_close(a.grad, b.grad)


@settings(max_examples=40, deadline=None)
@given(st.data(), broadcastable_pair(), st.sampled_from(sorted(BINARY)))
def test_binary_ops_broadcast(data, shapes_pair, name):
    sa, sb = shapes_pair
    x = data.draw(layouts(data.draw(arrays(sa))))
    y = data.draw(layouts(data.draw(arrays(sb))))
    _run(BINARY[name], [x, y])


@settings(max_examples=30, deadline=None)
@given(st.data(), shapes)
def test_reductions_on_any_layout(data, shape):
    x = data.draw(layouts(data.draw(arrays(shape))))
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1)) if nd else None
    keep = data.draw(st.booleans())
    if dim is None:
        _run(lambda v: v.sum() + v.mean() * 2, [x])
    else:
        def f(v):
            return v.sum(dim, keepdim=keep) + v.amax(dim, keepdim=keep) + v.softmax(dim).sum(dim, keepdim=keep)

        _run(f, [x])


@settings(max_examples=30, deadline=None)
@given(st.data(), st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple))
def test_movement_on_any_layout(data, shape):
    x = data.draw(layouts(data.draw(arrays(shape))))
    perm = data.draw(st.permutations(range(len(shape))))
    _run(lambda v: v.permute(*perm).reshape(-1).cumsum(0) * 1.5 + v.flip(0).sum(), [x])

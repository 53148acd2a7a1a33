"""Tensor factories accept every calling form PyTorch's do (varargs, one tuple or list, ``size=``), with the
same shapes, dtypes and errors: course code writes all of them."""
from __future__ import annotations

import pytest
import torch

import deepbox

CALLS = [
    "zeros(2, 3)", "zeros((2, 3))", "zeros([2, 3])", "zeros(size=(2, 3))", "zeros(size=[4], dtype=L.float64)",
    "ones(size=(1, 2))", "empty(size=(3,))", "rand(size=(2, 2))", "randn(size=(2, 3))", "randn(2, 3)",
    "randn((4,))", "rand(2, generator=L.Generator().manual_seed(0))", "randn(size=(2,), generator=L.Generator())",
    "randint(10, (2, 3))", "randint(2, 10, (2, 3))", "randint(10, size=(2, 3))", "randint(2, 10, size=[4])",
    "randint(low=2, high=10, size=(3,))", "randint(high=5, size=(2,))", "randint(3, 10, size=(4,), dtype=L.int32)",
    "full((2, 2), 3.0)", "full(size=(2,), fill_value=1)", "zeros(0, 3)", "zeros(())", "randn(())",
    "tensor([1.0]).new_zeros(2, 3)", "tensor([1.0]).new_zeros((2, 3))", "tensor([1.0]).new_ones(size=(2,))",
    "tensor([1]).new_full((2,), 3)", "tensor([1.0]).new_empty((0,))",
]

ERRORS = ["zeros(-1)", "randint(5, 2, (3,))", "zeros('a')", "randn(2, size=(3,))", "randint(10)"]


@pytest.mark.parametrize("call", CALLS)
def test_factory_forms_match_torch(call):
    t = eval(call.replace("L.", "torch."), {"torch": torch, **vars(torch)})
    d = eval(call.replace("L.", "deepbox."), {"deepbox": deepbox, **{k: getattr(deepbox, k) for k in dir(deepbox)}})
    assert tuple(d.shape) == tuple(t.shape)
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]


@pytest.mark.parametrize("call", ERRORS)
def test_factory_errors_match_torch(call):
    with pytest.raises(Exception) as te:
        eval(call, {**vars(torch)})
    with pytest.raises(type(te.value)):
        eval(call, {**{k: getattr(deepbox, k) for k in dir(deepbox)}})

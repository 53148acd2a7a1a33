"""From a layer to its reference op: the table stays true as the ops move and are renamed."""
from __future__ import annotations

import inspect

import pytest

import deepbox
import deepbox.nn as nn
from deepbox.autograd.function import Function
from deepbox.inspect.code import (
    LAYER_OPS,
    layer_code,
    normalize_op_name,
    ops_for_module_type,
    reference_ops,
    traced_ops,
)


def test_normalised_names_survive_suffix_renames():
    for name in ("Conv2d", "Conv2dFn", "Conv2dFunction", "conv2d_fn", "Conv2dFunc"):
        assert normalize_op_name(name) == "conv2d"
    assert normalize_op_name("LSTMLayer") == normalize_op_name("LSTMFn") == "lstm"


@pytest.mark.parametrize("type_name", sorted(LAYER_OPS))
def test_every_table_entry_names_a_reference_op(type_name):
    """A rename or a move in deepbox/ops that breaks the table fails here, naming the layer."""
    module_type = getattr(nn, type_name)
    ops = ops_for_module_type(module_type)
    assert ops, f"{type_name}: none of {LAYER_OPS[type_name]} is a Function in deepbox/ops ({sorted(reference_ops())})"
    cls = ops[0]
    assert issubclass(cls, Function) and cls.__module__.startswith("deepbox.ops.")
    assert "forward" in vars(cls) and "backward" in vars(cls), f"{cls.__name__} keeps forward and backward together"
    src = inspect.getsource(cls)
    assert "def forward" in src and "def backward" in src


# a layer, an input: the table's op must be the op that actually runs (or the reference twin of its fast kernel)
CASES = [
    (lambda: nn.Linear(3, 2), (4, 3)),
    (lambda: nn.Conv2d(2, 3, 3), (2, 2, 6, 6)),
    (lambda: nn.ReLU(), (4, 3)),
    (lambda: nn.Sigmoid(), (4, 3)),
    (lambda: nn.Tanh(), (4, 3)),
    (lambda: nn.BatchNorm2d(2), (3, 2, 4, 4)),
    (lambda: nn.MaxPool2d(2), (2, 2, 4, 4)),
    (lambda: nn.LayerNorm(3), (4, 3)),
    (lambda: nn.GELU(), (4, 3)),
]


@pytest.mark.parametrize("make,shape", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_table_agrees_with_the_traced_graph(make, shape):
    layer = make()
    x = deepbox.randn(*shape, requires_grad=True)
    traced = traced_ops(layer(x), [x])
    assert ops_for_module_type(type(layer))[0] in traced, (type(layer).__name__, traced)


def test_unknown_layer_is_traced_and_code_has_sources():
    class Swish(nn.Module):
        """x * sigmoid(x)."""

        def forward(self, x):
            return x * deepbox.sigmoid(x)

    x = deepbox.randn(2, 3, requires_grad=True)
    layer = Swish()
    traced = traced_ops(layer(x), [x])
    names = {c.__name__ for c in traced}
    assert {"Mul", "Sigmoid"} <= names
    doc = layer_code(layer, traced)
    assert doc["how"] == "traced" and doc["doc"] == "x * sigmoid(x)."
    assert "x * deepbox.sigmoid(x)" in doc["forward"]["source"]
    lin = layer_code(nn.Linear(2, 2))
    assert lin["how"] == "table" and lin["ops"][0]["file"].startswith("deepbox/ops/")
    assert "def backward" in lin["ops"][0]["source"] and lin["doc"]


def test_docstring_is_the_layers_own_never_modules():
    from deepbox.nn import Module

    class Bare(nn.Module):
        def forward(self, x):
            return x

    assert layer_code(Bare())["doc"] is None
    assert layer_code(nn.Conv2d)["doc"].startswith("2-D convolution")
    for t in (nn.Sigmoid, nn.ReLU, nn.Tanh, nn.Flatten):
        doc = layer_code(t)["doc"]
        assert doc != inspect.getdoc(Module), t.__name__

"""Exercise 'sigmoid': F.sigmoid's forward and backward on arrays, stable for large |x|."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import CheckFailed, Mistake
from deepbox.exercises.layer import Case, Layer, check_layer
from deepbox.exercises.training import train_mlp


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.sigmoid(t["x"])


def _s(x):
    return 1 / (1 + np.exp(-x))


LAYER = Layer(
    forward="sigmoid_forward", backward="sigmoid_backward", grads=("x",), reference=_reference,
    ref_name="F.sigmoid",
    mistakes=[
        Mistake("dx", "the derivative is s * (1 - s) with s = sigmoid(x), the output, not x * (1 - x)",
                lambda i, p, d: d * i["x"] * (1 - i["x"])),
        Mistake("dx", "missing the factor (1 - s): ds/dx = s * (1 - s)", lambda i, p, d: d * _s(i["x"])),
        Mistake("dx", "the chain rule: multiply s * (1 - s) by dout", lambda i, p, d: _s(i["x"]) * (1 - _s(i["x"]))),
        Mistake("out", "sigmoid is 1 / (1 + exp(-x)): check the sign inside exp",
                lambda i, p, d: 1 / (1 + np.exp(i["x"]))),
    ],
)


def _cases():
    r = np.random.default_rng(4)
    return [
        Case("hand-made", {"x": np.array([[-2.0, 0.0, 3.0], [0.5, -0.5, 1.0]])}),
        Case("random (4, 6)", {"x": r.standard_normal((4, 6)) * 3}),
        Case("large |x|: +-800", {"x": np.array([-800.0, -50.0, 50.0, 800.0])}),
        Case("batch of one", {"x": r.standard_normal((1, 5))}),
        Case("hidden", {"x": r.standard_normal((3, 2, 5)) * 10}, hidden=True),
    ]


def _check(ck):
    r = np.random.default_rng(5)
    with np.errstate(over="raise"):
        try:
            check_layer(ck, LAYER, _cases(), [Case("(3, 4)", {"x": r.standard_normal((3, 4)) * 2})])
        except CheckFailed as f:
            if "FloatingPointError" in f.what:
                f.hint = ("exp overflowed: for x = -800, exp(-x) = exp(800) is inf. Use e = exp(-|x|) and "
                          "s = 1/(1+e) for x >= 0, e/(1+e) for x < 0")
            raise


def _swap(student, part):
    import deepbox.nn.functional as F
    from deepbox import nn
    from deepbox.exercises.swap import layer_function

    fn = layer_function(student, LAYER)
    return [(F, "sigmoid", lambda input: fn(input)), (nn.Sigmoid, "forward", lambda self, input: fn(input))]


def _train(ex, student, parts, **kw):
    return train_mlp(ex, student, parts, activation="sigmoid", **kw)


EXERCISE = Exercise(
    name="sigmoid", lecture="3-4", summary="F.sigmoid: 1/(1+exp(-x)) without overflow, and its gradient",
    parts=[Part("forward and backward (sigmoid_forward, sigmoid_backward)", ("sigmoid_forward", "sigmoid_backward"),
                _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)

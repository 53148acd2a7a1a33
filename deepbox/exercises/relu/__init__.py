"""Exercise 'relu': F.relu's forward and backward on arrays."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Mistake
from deepbox.exercises.layer import Case, Layer, check_layer
from deepbox.exercises.training import train_mlp


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.relu(t["x"])


LAYER = Layer(
    forward="relu_forward", backward="relu_backward", grads=("x",), reference=_reference, ref_name="F.relu",
    mistakes=[
        Mistake("dx", "at x == 0 the gradient is 0 (PyTorch's convention): use x > 0, not x >= 0",
                lambda i, p, d: d * (i["x"] >= 0)),
        Mistake("dx", "the chain rule: multiply the local derivative [x > 0] by dout",
                lambda i, p, d: (i["x"] > 0).astype(float)),
        Mistake("dx", "the mask must come from the input x (x > 0), not from dout",
                lambda i, p, d: d * (d > 0)),
        Mistake("out", "relu keeps the positive part: max(x, 0), not min(x, 0)", lambda i, p, d: np.minimum(i["x"], 0)),
    ],
)


def _away_from_zero(r, shape):
    x = r.standard_normal(shape)
    return x + np.sign(x) * 0.1  # central differences need a margin around the kink at 0


def _cases():
    r = np.random.default_rng(3)
    return [
        Case("hand-made with exact zeros", {"x": np.array([[-2.0, 0.0, 3.0], [0.5, -0.0, -1e-3]])}),
        Case("random 4-D batch (2, 3, 4, 5)", {"x": r.standard_normal((2, 3, 4, 5))}),
        Case("batch of one", {"x": r.standard_normal((1, 7))}),
        Case("hidden", {"x": np.where(r.random((6, 6)) < 0.3, 0.0, r.standard_normal((6, 6)))}, hidden=True),
        Case("hidden", {"x": r.standard_normal(11) * 100}, hidden=True),
    ]


def _check(ck):
    r = np.random.default_rng(5)
    check_layer(ck, LAYER, _cases(), [Case("(3, 4), away from 0", {"x": _away_from_zero(r, (3, 4))})])


def _swap(student, part):
    import deepbox.nn.functional as F
    from deepbox import nn
    from deepbox.exercises.swap import layer_function

    fn = layer_function(student, LAYER)
    relu = lambda input, inplace=False: fn(input)
    return [(F, "relu", relu), (nn.ReLU, "forward", lambda self, input: fn(input))]


EXERCISE = Exercise(
    name="relu", lecture="3-4", summary="F.relu: max(x, 0) and its gradient (no in-place surprises)",
    parts=[Part("forward and backward (relu_forward, relu_backward)", ("relu_forward", "relu_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=train_mlp)

"""Exercise 'linear': nn.Linear's forward and backward on arrays."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Mistake
from deepbox.exercises.layer import Case, Layer, check_layer
from deepbox.exercises.training import train_mlp


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.linear(t["x"], t["w"], t["b"])


def _factors(case):
    n = case.inputs["x"].shape[0]
    return {"N": (float(n), "the gradient of a layer sums over the batch once, with no extra factor"),
            "1/N": (1.0 / n, "a layer's gradient is a sum over the batch, not a mean (the loss holds the 1/N)")}


LAYER = Layer(
    forward="linear_forward", backward="linear_backward", grads=("x", "w", "b"), reference=_reference,
    ref_name="F.linear", factors=_factors,
    mistakes=[
        Mistake("out", "transposed weight: w is stored as (out_features, in_features), so out = x @ w.T + b",
                lambda i, p, d: i["x"] @ i["w"] + i["b"]),
        Mistake("out", "the bias is missing from the output", lambda i, p, d: i["x"] @ i["w"].T),
        Mistake("dw", "dw is transposed: it must have the weight's layout (out_features, in_features): dout.T @ x",
                lambda i, p, d: i["x"].T @ d),
        Mistake("dx", "transposed weight in dx: dx = dout @ w (w is (out_features, in_features))",
                lambda i, p, d: d @ i["w"].T),
        Mistake("db", "db should sum dout over the batch axis (axis=0)", lambda i, p, d: d.mean(axis=0)),
    ],
)


def _cases():
    r = np.random.default_rng(18)
    x = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]])
    w = np.array([[0.1, 0.2, 0.3], [-0.3, 0.4, 0.0], [1.0, -1.0, 0.5], [0.0, 0.0, 2.0]])
    cases = [Case("hand-sized: N=2, 3 -> 4", {"x": x, "w": w, "b": np.array([0.0, 1.0, -1.0, 0.5])})]
    for label, n, d, m, hidden in [("random: N=5, 7 -> 3", 5, 7, 3, False),
                                   ("batch of one: N=1, 4 -> 6", 1, 4, 6, False),
                                   ("square weight: N=3, 5 -> 5", 3, 5, 5, False), ("", 13, 1, 6, True),
                                   ("", 4, 9, 9, True)]:
        cases.append(Case(label or "hidden", {"x": r.standard_normal((n, d)), "w": r.standard_normal((m, d)),
                                              "b": r.standard_normal(m)}, hidden=hidden))
    return cases


def _fd_cases():
    r = np.random.default_rng(7)
    return [Case("N=3, 4 -> 2", {"x": r.standard_normal((3, 4)), "w": r.standard_normal((2, 4)),
                                 "b": r.standard_normal(2)})]


def _check(ck):
    check_layer(ck, LAYER, _cases(), _fd_cases())


def _swap(student, part):
    from deepbox.exercises.swap import layer_function, patch_functional

    fn = layer_function(student, LAYER)

    def linear(input, weight, bias=None):
        if bias is None:
            import deepbox

            bias = deepbox.zeros(weight.shape[0], dtype=weight.dtype)
        if input.dim() != 2:
            lead = input.shape[:-1]
            return fn(input.reshape(-1, input.shape[-1]), weight, bias).reshape(*lead, weight.shape[0])
        return fn(input, weight, bias)

    return patch_functional("linear", linear)


EXERCISE = Exercise(
    name="linear", lecture="3-4", summary="nn.Linear: out = x w^T + b, forward and backward",
    parts=[Part("forward and backward (linear_forward, linear_backward)", ("linear_forward", "linear_backward"),
                _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=train_mlp)

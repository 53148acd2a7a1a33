"""Exercise 'maxpool2d': F.max_pool2d's forward and backward on arrays (ties go to the first maximum)."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Mistake
from deepbox.exercises.layer import Case, Layer, check_layer
from deepbox.exercises.training import train_lenet


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.max_pool2d(t["x"], params["kernel_size"], params["stride"])


def _grad(i, p, d, all_ties=False, assign=False):
    x = i["x"]
    k = p["kernel_size"]
    s = p["stride"] or k
    dx = np.zeros_like(x)
    for a in range(d.shape[2]):
        for b in range(d.shape[3]):
            win = x[:, :, a * s:a * s + k, b * s:b * s + k]
            if all_ties:
                mask = win == win.max(axis=(2, 3), keepdims=True)
            else:
                flat = win.reshape(*win.shape[:2], -1)
                mask = (np.arange(k * k) == flat.argmax(axis=2)[..., None]).reshape(win.shape)
            g = mask * d[:, :, a, b][:, :, None, None]
            window = dx[:, :, a * s:a * s + k, b * s:b * s + k]
            if assign:
                window[...] = np.where(mask, g, window)
            else:
                window += g
    return dx


def _avg(i, p, d):
    import deepbox
    import deepbox.nn.functional as F

    return F.avg_pool2d(deepbox.tensor(i["x"]), p["kernel_size"], p["stride"]).numpy()


LAYER = Layer(
    forward="maxpool2d_forward", backward="maxpool2d_backward", grads=("x",), reference=_reference,
    ref_name="F.max_pool2d",
    shape_hints={"out": "HO = (H - kernel_size) // stride + 1: rows and columns that do not fill a window are "
                        "dropped, and the stride defaults to kernel_size"},
    mistakes=[
        Mistake("out", "that is average pooling: take the maximum of each window", _avg),
        Mistake("dx", "with ties, PyTorch sends the whole gradient to the first maximum only (argmax), not to "
                      "every tied input", lambda i, p, d: _grad(i, p, d, all_ties=True)),
        Mistake("dx", "overlapping windows: an input that wins several windows gets the sum of their gradients (+=)",
                lambda i, p, d: _grad(i, p, d, assign=True)),
    ],
)


def _distinct(r, shape):
    """Values at least 0.1 apart, so central differences never cross a tie."""
    return r.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + r.random(shape) * 0.01


def _cases():
    r = np.random.default_rng(11)
    return [
        Case("hand-made 4x4, k=2", {"x": np.arange(16.0).reshape(1, 1, 4, 4)[:, :, ::-1].copy()},
             {"kernel_size": 2, "stride": None}),
        Case("random (2, 3, 6, 6), k=2", {"x": _distinct(r, (2, 3, 6, 6))}, {"kernel_size": 2, "stride": None}),
        Case("odd sizes (1, 2, 5, 7), k=2", {"x": _distinct(r, (1, 2, 5, 7))}, {"kernel_size": 2, "stride": None}),
        Case("overlapping windows k=3, stride 2", {"x": _distinct(r, (2, 2, 7, 7))}, {"kernel_size": 3, "stride": 2}),
        Case("ties: values 0 to 2 only", {"x": r.integers(0, 3, (2, 2, 4, 6)).astype(np.float64)},
             {"kernel_size": 2, "stride": None}),
        Case("hidden", {"x": r.integers(0, 2, (1, 3, 7, 5)).astype(np.float64)}, {"kernel_size": 3, "stride": 1},
             hidden=True),
        Case("hidden", {"x": _distinct(r, (3, 1, 8, 8))}, {"kernel_size": 4, "stride": None}, hidden=True),
    ]


def _check(ck):
    r = np.random.default_rng(12)
    check_layer(ck, LAYER, _cases(), [Case("(2, 2, 5, 5), k=3, stride 2", {"x": _distinct(r, (2, 2, 5, 5))},
                                           {"kernel_size": 3, "stride": 2})])


def _one(v, what):
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise NotImplementedError(f"your max pooling takes one {what} for both sides, got {tuple(v)}")
        v = v[0]
    return int(v)


def _swap(student, part):
    import deepbox.nn.functional as F
    from deepbox import nn
    from deepbox.exercises.swap import layer_function

    fn = layer_function(student, LAYER)

    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        if _one(padding, "padding") or _one(dilation, "dilation") != 1 or ceil_mode or return_indices:
            raise NotImplementedError("your max pooling covers padding 0, dilation 1, floor mode, no indices")
        k = _one(kernel_size, "kernel size")
        return fn(input, kernel_size=k, stride=k if stride is None or stride == [] else _one(stride, "stride"))

    def forward(self, input):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)

    return [(F, "max_pool2d", max_pool2d), (nn.MaxPool2d, "forward", forward)]


EXERCISE = Exercise(
    name="maxpool2d", lecture="9", summary="F.max_pool2d: the window maximum; its gradient goes to the first maximum",
    parts=[Part("forward and backward (maxpool2d_forward, maxpool2d_backward)",
                ("maxpool2d_forward", "maxpool2d_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=train_lenet)

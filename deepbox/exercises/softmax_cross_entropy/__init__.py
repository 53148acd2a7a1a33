"""Exercise 'softmax_cross_entropy': F.cross_entropy (mean) forward and backward on arrays."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Mistake
from deepbox.exercises.layer import Case, Layer, check_layer
from deepbox.exercises.training import train_mlp


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.cross_entropy(t["logits"], t["targets"])


def _softmax(z, axis=1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _grad(i, axis=1, scale=True):
    z, y = i["logits"], i["targets"]
    p = _softmax(z, axis)
    p[np.arange(len(y)), y] -= 1
    return p / len(y) if scale else p


def _loss(i, axis=1):
    z, y = i["logits"], i["targets"]
    return -np.log(_softmax(z, axis)[np.arange(len(y)), y])


def _loss_mixed_axes(i):
    """Shifted by each row's maximum but normalised over the batch (axis 0)."""
    z, y = i["logits"], i["targets"]
    s = z - z.max(axis=1, keepdims=True)
    return -(s - np.log(np.exp(s).sum(axis=0, keepdims=True)))[np.arange(len(y)), y].mean()


def _factors(case):
    n = float(case.inputs["logits"].shape[0])
    return {"N": (n, "the loss is a mean over the batch: divide by N (in the forward and in the backward)"),
            "1/N": (1 / n, "the 1/N of the mean appears once: check for a second division by N")}


LAYER = Layer(
    forward="softmax_cross_entropy_forward", backward="softmax_cross_entropy_backward", grads=("logits",),
    inputs=("logits", "targets"), outputs=("loss",), reference=_reference, ref_name="F.cross_entropy",
    factors=_factors,
    mistakes=[
        Mistake("loss", "the loss is a mean over the batch: missing 1/N", lambda i, p, d: _loss(i).sum()),
        Mistake("loss", "softmax normalises over the classes (axis 1), not over the batch (axis 0)",
                lambda i, p, d: _loss(i, axis=0).mean()),
        Mistake("loss", "softmax normalises over the classes (axis 1), not over the batch (axis 0)",
                lambda i, p, d: _loss_mixed_axes(i)),
        Mistake("dlogits", "missing 1/N in the gradient: the loss is a mean over the batch",
                lambda i, p, d: d * _grad(i, scale=False)),
        Mistake("dlogits", "the chain rule: multiply by dloss, the gradient arriving from above",
                lambda i, p, d: _grad(i)),
        Mistake("dlogits", "subtract 1 at each example's label: dlogits = (p - onehot(y)) / N",
                lambda i, p, d: d * _softmax(i["logits"]) / len(i["targets"])),
        Mistake("dlogits", "softmax normalises over the classes (axis 1), not over the batch (axis 0)",
                lambda i, p, d: d * _grad(i, axis=0)),
    ],
)


def _cases():
    r = np.random.default_rng(6)
    z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    return [
        Case("hand-made: N=4, C=3", {"logits": z, "targets": np.array([0, 1, 2, 1])}),
        Case("random: N=8, C=10", {"logits": r.standard_normal((8, 10)) * 2, "targets": r.integers(0, 10, 8)}),
        Case("batch of one", {"logits": r.standard_normal((1, 5)), "targets": np.array([3])}),
        Case("two classes", {"logits": r.standard_normal((6, 2)), "targets": r.integers(0, 2, 6)}),
        Case("large scores near +-1000", {"logits": np.array([[1000.0, 999.0, -1000.0], [-1000.0, -998.0, -999.5]]),
                                          "targets": np.array([1, 0])}),
        Case("hidden", {"logits": r.standard_normal((5, 7)) * 5, "targets": r.integers(0, 7, 5)}, hidden=True),
        Case("hidden", {"logits": r.standard_normal((3, 4)) + 500, "targets": np.array([3, 3, 0])}, hidden=True),
    ]


def _check(ck):
    r = np.random.default_rng(8)
    check_layer(ck, LAYER, _cases(), [Case("N=4, C=3", {"logits": r.standard_normal((4, 3)),
                                                        "targets": np.array([2, 0, 1, 1])})])


def _swap(student, part):
    import deepbox.nn.functional as F
    from deepbox.exercises.swap import layer_function

    fn = layer_function(student, LAYER)

    def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                      reduction="mean", label_smoothing=0.0):
        if (weight is not None or reduction != "mean" or label_smoothing or input.dim() != 2
                or size_average is not None or reduce is not None):
            raise NotImplementedError("your softmax_cross_entropy covers (N, C) scores with the mean reduction "
                                      "and no class weights or label smoothing")
        return fn(input, target.numpy())

    return [(F, "cross_entropy", cross_entropy)]


EXERCISE = Exercise(
    name="softmax_cross_entropy", lecture="2",
    summary="F.cross_entropy: a stable log-softmax, the mean over the batch, and (p - onehot) / N",
    parts=[Part("forward and backward (softmax_cross_entropy_forward, softmax_cross_entropy_backward)",
                ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=train_mlp)

"""Exercise 'sgd_momentum': optim.SGD's update with momentum and weight decay, checked step by step."""
from __future__ import annotations

import os

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.optimizer import check_optimizer, optimizer_swap
from deepbox.exercises.training import train_optimizer


def _sgd(lr, momentum, weight_decay):
    import deepbox

    return lambda params: deepbox.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _variant(decay=True, keep=True, damp=False, sign=1.0):
    def update(w, dw, state, lr, momentum=0.9, weight_decay=0.0):
        g = dw + (weight_decay * w if decay else 0)
        if keep and "v" in state:
            state["v"] = momentum * state["v"] + ((1 - momentum) * g if damp else g)
        else:
            state["v"] = g.copy()  # the first step, with or without dampening
        w -= sign * lr * state["v"]

    return update


VARIANTS = [
    ("weight decay adds weight_decay * w to the gradient (before the momentum)", _variant(decay=False)),
    ("keep the velocity in state between calls: it is the running sum of past gradients", _variant(keep=False)),
    ("PyTorch's momentum adds the whole gradient: v = momentum * v + g (no (1 - momentum) factor)",
     _variant(damp=True)),
    ("step against the gradient: w -= lr * v", _variant(sign=-1.0)),
]


def _cases():
    return [("lr 0.05, momentum 0.9", dict(lr=0.05, momentum=0.9, weight_decay=0.0), _sgd(0.05, 0.9, 0.0)),
            ("lr 0.1, momentum 0.5, weight decay 0.1", dict(lr=0.1, momentum=0.5, weight_decay=0.1),
             _sgd(0.1, 0.5, 0.1))]


def _hidden():
    return [("hidden", dict(lr=0.02, momentum=0.99, weight_decay=0.01), _sgd(0.02, 0.99, 0.01))]


def _check(ck):
    check_optimizer(ck, "sgd_momentum_update", "optim.SGD", _cases(), VARIANTS, _hidden())


def _swap(student, part):
    import deepbox

    def hyper(group):
        if group["nesterov"] or group["dampening"] or group["maximize"]:
            raise NotImplementedError("your SGD covers momentum and weight decay (no Nesterov, dampening or maximize)")
        return dict(lr=float(group["lr"]), momentum=group["momentum"], weight_decay=group["weight_decay"])

    return optimizer_swap(deepbox.optim.SGD, student.sgd_momentum_update, hyper)


def _train(ex, student, parts, **kw):
    import deepbox

    return train_optimizer(ex, student, parts, lambda p: deepbox.optim.SGD(p, lr=0.05, momentum=0.9), **kw)


EXERCISE = Exercise(
    name="sgd_momentum", lecture="5", summary="optim.SGD: momentum and weight decay, updating the weights in place",
    parts=[Part("update (sgd_momentum_update)", ("sgd_momentum_update",), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)

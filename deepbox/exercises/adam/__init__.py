"""Exercise 'adam': optim.Adam's update (bias correction, eps, L2 weight decay), checked step by step."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.optimizer import check_optimizer, optimizer_swap
from deepbox.exercises.training import train_optimizer


def _adam(lr, betas, eps, weight_decay):
    import deepbox

    return lambda params: deepbox.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _variant(correct=True, eps_inside=False, t0=1, decoupled=False, ema=True):
    def update(w, dw, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = betas
        if not state:
            state.update(t=t0 - 1, m=np.zeros_like(w), v=np.zeros_like(w))
        state["t"] += 1
        t = state["t"]
        if decoupled:
            w *= 1 - lr * weight_decay
            g = dw
        else:
            g = dw + weight_decay * w
        state["m"] = b1 * state["m"] + ((1 - b1) * g if ema else g)
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        m, v = state["m"], state["v"]
        if correct:
            m, v = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w -= lr * m / (np.sqrt(v + eps) if eps_inside else np.sqrt(v) + eps)

    return update


VARIANTS = [
    ("bias correction: divide m by (1 - beta1^t) and v by (1 - beta2^t), so early steps are not too small",
     _variant(correct=False)),
    ("eps goes outside the square root: sqrt(v_hat) + eps", _variant(eps_inside=True)),
    ("the step counter: t is 1 at the first step (1 - beta^0 = 0 would divide by zero)", _variant(t0=0)),
    ("Adam's weight_decay is L2: g = dw + weight_decay * w (AdamW is the one that decays w directly)",
     _variant(decoupled=True)),
    ("m is a running mean: m = beta1 * m + (1 - beta1) * g", _variant(ema=False)),
]


def _cases():
    return [("lr 0.1, default betas", dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
             _adam(0.1, (0.9, 0.999), 1e-8, 0.0)),
            ("lr 0.05, betas (0.5, 0.9), eps 0.1", dict(lr=0.05, betas=(0.5, 0.9), eps=0.1, weight_decay=0.0),
             _adam(0.05, (0.5, 0.9), 0.1, 0.0)),
            ("lr 0.1, weight decay 0.5", dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.5),
             _adam(0.1, (0.9, 0.999), 1e-8, 0.5))]


def _hidden():
    return [("hidden", dict(lr=0.3, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05),
             _adam(0.3, (0.8, 0.99), 1e-3, 0.05))]


def _check(ck):
    check_optimizer(ck, "adam_update", "optim.Adam", _cases(), VARIANTS, _hidden())


def _swap(student, part):
    import deepbox

    def hyper(group):
        if group["amsgrad"] or group["maximize"] or group.get("decoupled_weight_decay"):
            raise NotImplementedError("your Adam covers lr, betas, eps and L2 weight decay (no AMSGrad, maximize or "
                                      "decoupled weight decay)")
        return dict(lr=float(group["lr"]), betas=tuple(float(b) for b in group["betas"]), eps=group["eps"],
                    weight_decay=group["weight_decay"])

    return optimizer_swap(deepbox.optim.Adam, student.adam_update, hyper)


def _train(ex, student, parts, **kw):
    import deepbox

    return train_optimizer(ex, student, parts, lambda p: deepbox.optim.Adam(p, lr=1e-3), **kw)


EXERCISE = Exercise(
    name="adam", lecture="5", summary="optim.Adam: running moments, bias correction, eps, L2 weight decay",
    parts=[Part("update (adam_update)", ("adam_update",), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)

"""Exercise 'batchnorm': F.batch_norm in training and eval mode, with the running statistics, on arrays."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import CheckFailed, Mistake, rel_error
from deepbox.exercises.layer import Case, Layer, check_layer
from deepbox.exercises.training import train_mlp


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.batch_norm(t["x"], t["running_mean"], t["running_var"], t["gamma"], t["beta"],
                        training=params["training"], momentum=params["momentum"], eps=params["eps"])


def _axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _bc(v, x):
    return v.reshape((1, -1) if x.ndim == 2 else (1, -1, 1, 1))


def _normalise(i, p, ddof=0, axes=None):
    x = i["x"]
    ax = axes or _axes(x)
    if p["training"]:
        mean, var = x.mean(axis=ax, keepdims=True), x.var(axis=ax, ddof=ddof, keepdims=True)
    else:
        mean, var = _bc(i["running_mean"], x), _bc(i["running_var"], x)
    return _bc(i["gamma"], x) * (x - mean) / np.sqrt(var + p["eps"]) + _bc(i["beta"], x)


def _batch_stats_in_eval(i, p):
    if p["training"]:
        return None
    return _normalise(i, dict(p, training=True))


def _dx_constant_stats(i, p, d):
    x = i["x"]
    return d * _bc(i["gamma"], x) / np.sqrt(x.var(axis=_axes(x), keepdims=True) + p["eps"])


LAYER = Layer(
    forward="batchnorm_forward", backward="batchnorm_backward", grads=("x", "gamma", "beta"),
    inputs=("x", "gamma", "beta", "running_mean", "running_var"), reference=_reference, ref_name="F.batch_norm",
    mutable=("running_mean", "running_var"),
    shape_hints={"dgamma": "dgamma and dbeta are per channel (C,): sum over axis 0, or (0, 2, 3) for images",
                 "dbeta": "dgamma and dbeta are per channel (C,): sum over axis 0, or (0, 2, 3) for images"},
    mistakes=[
        Mistake("out", "normalise with the biased batch variance (divide by m); only the running estimate uses the "
                       "unbiased one", lambda i, p, d: _normalise(i, p, ddof=1) if p["training"] else None),
        Mistake("out", "for (N, C, H, W) inputs the statistics are per channel: average over the axes (0, 2, 3), "
                       "not over the batch axis alone",
                lambda i, p, d: _normalise(i, p, axes=(0,)) if i["x"].ndim == 4 and p["training"] else None),
        Mistake("out", "in eval mode, normalise with running_mean and running_var, not with the batch's statistics",
                lambda i, p, d: _batch_stats_in_eval(i, p)),
        Mistake("dx", "the batch mean and variance depend on x too: dx has three terms (directly, through the mean, "
                      "through the variance)", _dx_constant_stats),
    ],
)


def _running_check(ck, case, after, ref_after):
    """The running statistics after the forward, against deepbox's."""
    p = case.params
    x = case.inputs["x"]
    for name in ("running_mean", "running_var"):
        before, got, exp = case.inputs[name], after[name], ref_after[name]
        if rel_error(got, exp)[0] <= 1e-7:
            continue
        where = f" (case '{case.label}')"
        hint = None
        stat = x.mean(axis=_axes(x)) if name == "running_mean" else x.var(axis=_axes(x))
        m = x.size // x.shape[1]
        if np.array_equal(got, before) and p["training"]:
            hint = ("forgotten running statistics: in training, update running_mean and running_var IN PLACE "
                    "(running_mean *= 1 - momentum; running_mean += momentum * mean), not by rebinding the name")
        elif not p["training"]:
            hint = "in eval mode the running statistics are used, not updated"
        elif name == "running_var" and rel_error(got, (1 - p["momentum"]) * before + p["momentum"] * stat)[0] < 1e-9:
            hint = f"the running variance uses the unbiased batch variance: var * m / (m - 1) (here m = {m})"
        elif rel_error(got, p["momentum"] * before + (1 - p["momentum"]) * (stat if name == "running_mean" else
                                                                              stat * m / (m - 1)))[0] < 1e-9:
            hint = "PyTorch's momentum weighs the new statistic: running = (1 - momentum) * running + momentum * batch"
        err, idx = rel_error(got, exp)
        raise CheckFailed(f"{name} after the forward{where} is wrong",
                          [f"worst element {name}[{idx[0]}] = {got[idx]:.6g}, expected {exp[idx]:.6g} "
                           f"(relative error {err:.1e})"], hint)


LAYER.extra = _running_check


def _case(label, r, shape, training=True, momentum=0.1, hidden=False, scale=1.0):
    c = shape[1]
    return Case(label, {"x": r.standard_normal(shape) * scale + r.standard_normal(c).reshape(
        (1, c) + (1,) * (len(shape) - 2)), "gamma": 1 + 0.5 * r.standard_normal(c), "beta": r.standard_normal(c),
        "running_mean": 0.1 * r.standard_normal(c), "running_var": 1 + r.random(c)},
        {"training": training, "momentum": momentum, "eps": 1e-5}, hidden=hidden, grad=training)


def _cases():
    r = np.random.default_rng(13)
    return [
        _case("training, (8, 4)", r, (8, 4)),
        _case("training, images (4, 3, 5, 5)", r, (4, 3, 5, 5)),
        _case("training, batch of two (2, 5), momentum 0.3", r, (2, 5), momentum=0.3),
        _case("eval, (6, 4)", r, (6, 4), training=False),
        _case("eval, images (2, 3, 4, 4)", r, (2, 3, 4, 4), training=False),
        _case("hidden", r, (16, 7), scale=5.0, hidden=True),
        _case("hidden", r, (1, 2, 3, 3), hidden=True),
    ]


def _check(ck):
    r = np.random.default_rng(14)
    check_layer(ck, LAYER, _cases(), [_case("training, (5, 3)", r, (5, 3)), _case("images (2, 2, 3, 3)", r,
                                                                                     (2, 2, 3, 3))])


def _swap(student, part):
    import deepbox
    import deepbox.nn.functional as F
    from deepbox.exercises.swap import layer_function

    fn = layer_function(student, LAYER)

    def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                   eps=1e-5):
        c = input.shape[1]
        if running_mean is None or running_var is None or momentum is None:
            raise NotImplementedError("your batch norm needs running statistics and a momentum")
        weight = weight if weight is not None else deepbox.ones(c, dtype=input.dtype)
        bias = bias if bias is not None else deepbox.zeros(c, dtype=input.dtype)
        # the buffers' arrays: the student's in-place update reaches the module's running statistics
        return fn(input, weight, bias, running_mean.detach().numpy(), running_var.detach().numpy(),
                  training=training, momentum=momentum, eps=eps)

    return [(F, "batch_norm", batch_norm)]


def _train(ex, student, parts, **kw):
    return train_mlp(ex, student, parts, batch_norm=True, **kw)


EXERCISE = Exercise(
    name="batchnorm", lecture="6-8",
    summary="F.batch_norm: per-channel statistics, running averages in place, training vs eval",
    parts=[Part("forward and backward (batchnorm_forward, batchnorm_backward)",
                ("batchnorm_forward", "batchnorm_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)

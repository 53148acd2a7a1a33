"""The checks of a layer written as ``forward(*inputs, **params) -> (out, cache)`` and ``backward(dout, cache)``.

``backward`` returns the gradients of the inputs named in ``Layer.grads``, in that order. A layer
with several outputs (an LSTM cell's ``h`` and ``c``) returns ``(h, c, cache)`` and its backward
takes ``(dh, dc, cache)``. The reference is deepbox's own op through its public functional API,
computed in float64 on the readable reference path (compiled kernels off).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from deepbox.exercises.checking import (
    FD_TOL,
    Checker,
    CheckFailed,
    numerical_gradient,
    reference_mode,
    rel_error,
    to_tuple,
)

__all__ = ["Case", "Layer", "check_layer", "reference_run"]


@dataclass
class Case:
    """One set of inputs: ``inputs`` in the order of the forward's arguments, ``params`` as keywords."""

    label: str
    inputs: dict
    params: dict = field(default_factory=dict)
    hidden: bool = False
    grad: bool = True


@dataclass
class Layer:
    forward: str
    backward: str
    grads: tuple                       # the inputs whose gradients backward returns, in order
    reference: object                  # reference(tensors: dict, params: dict) -> Tensor or tuple of Tensors
    ref_name: str
    outputs: tuple = ("out",)
    inputs: tuple = ()                 # all forward inputs in order, when more than the grads (targets, masks)
    mutable: tuple = ()                # inputs the forward changes in place on purpose (running statistics)
    mistakes: list = field(default_factory=list)
    factors: object = None             # factors(case) -> {name: (value, message)} for constant-factor hints
    extra: object = None               # extra(ck, case, student_inputs_after, reference_inputs_after)
    shape_hints: dict = field(default_factory=dict)   # {output or 'd'+input: hint when its shape is wrong}


def _copies(case: Case) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.inputs.items()}


def reference_run(layer: Layer, case: Case, seed: int = 0):
    """deepbox's outputs and input gradients (for random output gradients) on this case, in float64."""
    import deepbox

    arrays = _copies(case)
    with reference_mode():
        ts = {}
        for k, v in arrays.items():
            if isinstance(v, np.ndarray):
                t = deepbox.tensor(v)
                if k in layer.grads and case.grad:
                    t.requires_grad_(True)
                ts[k] = t
            else:
                ts[k] = v
        outs = to_tuple(layer.reference(ts, dict(case.params)))
        rng = np.random.default_rng(seed)
        douts = []
        for o in outs:
            d = rng.standard_normal(tuple(o.shape)) if o.dim() else np.float64(0.5 + rng.random())
            douts.append(d)
        grads = []
        if case.grad and layer.grads:
            total = None
            for o, d in zip(outs, douts):
                term = (o * deepbox.tensor(np.asarray(d))).sum()
                total = term if total is None else total + term
            total.backward()
            for k in layer.grads:
                g = ts[k].grad
                grads.append(np.zeros_like(arrays[k]) if g is None else g.numpy().copy())
    out_arrays = [o.detach().numpy().copy() for o in outs]
    after = {k: (t.detach().numpy() if isinstance(t, deepbox.Tensor) else t) for k, t in ts.items()}
    return out_arrays, douts, grads, after


def _forward(ck: Checker, layer: Layer, case: Case):
    """Call the student's forward on copies of the case's inputs: (outputs, cache, the inputs afterwards)."""
    args = _copies(case)
    res = ck.call(layer.forward, *args.values(), **case.params)
    n = len(layer.outputs)
    if not isinstance(res, tuple) or len(res) != n + 1:
        want = "(" + ", ".join(layer.outputs) + ", cache)"
        got = f"a tuple of {len(res)}" if isinstance(res, tuple) else type(res).__name__
        raise CheckFailed(f"`{layer.forward}` should return {want}, got {got}",
                          hint="return the output(s) and the cache that backward needs, as a tuple")
    return list(res[:n]), res[n], args


def _backward(ck: Checker, layer: Layer, douts, cache):
    douts_in = [d.copy() if isinstance(d, np.ndarray) else d for d in douts]
    res = ck.call(layer.backward, *douts_in, cache)
    for d0, d1 in zip(douts, douts_in):
        if isinstance(d0, np.ndarray) and not np.array_equal(d0, d1, equal_nan=True):
            raise CheckFailed(f"`{layer.backward}` changed the incoming gradient in place",
                              hint="the gradient arriving from above is shared with other layers: build a new "
                                   "array (dx = dout * mask) instead of changing dout (dout[x <= 0] = 0)")
    grads = to_tuple(res)
    if len(grads) != len(layer.grads):
        raise CheckFailed(f"`{layer.backward}` should return {len(layer.grads)} gradients "
                          f"({', '.join('d' + g for g in layer.grads)}), got {len(grads)}")
    return list(grads)


def _where(case: Case) -> str:
    return f" (case '{case.label}')" if not case.hidden else " (a hidden case)"


def _check_inputs_unchanged(layer: Layer, case: Case, after: dict) -> None:
    for k, v in case.inputs.items():
        if k in layer.mutable or not isinstance(v, np.ndarray):
            continue
        if not np.array_equal(v, after[k], equal_nan=True):
            raise CheckFailed(f"`{layer.forward}` changed its input `{k}` in place{_where(case)}",
                              hint="in a network the input is another layer's output that backward still needs: "
                                   "build a new array (np.maximum(x, 0), x * mask) instead of writing into it")


def check_values(ck: Checker, layer: Layer, case: Case, ref) -> float:
    outs, _, after = _forward(ck, layer, case)
    ref_outs, douts, _, ref_after = ref
    worst = 0.0
    args = (case.inputs, case.params, None)
    for name, got, exp in zip(layer.outputs, outs, ref_outs):
        worst = max(worst, ck.expect_close(name, got, exp, where=_where(case), mistakes=layer.mistakes,
                                           mistake_args=args, hidden=case.hidden,
                                           factors=layer.factors(case) if layer.factors else None))
    _check_inputs_unchanged(layer, case, after)
    if layer.extra is not None:
        layer.extra(ck, case, after, ref_after)
    return worst


def check_gradients(ck: Checker, layer: Layer, case: Case, ref, scores: dict) -> None:
    outs, cache, _ = _forward(ck, layer, case)
    _, douts, ref_grads, _ = ref
    grads = _backward(ck, layer, douts, cache)
    args = (case.inputs, case.params, douts[0] if len(douts) == 1 else douts)
    for name, got, exp in zip(layer.grads, grads, ref_grads):
        try:
            err = ck.expect_close("d" + name, got, exp, where=_where(case), mistakes=layer.mistakes,
                                  mistake_args=args, hidden=case.hidden,
                                  factors=layer.factors(case) if layer.factors else None)
        except CheckFailed as f:
            if f.hint is None:  # a mistake made upstream shows more clearly in another input's gradient
                f.hint = _hint_from_other_gradients(ck, layer, grads, args)
            raise
        scores[name] = max(scores.get(name, 0.0), err)


def _hint_from_other_gradients(ck, layer, grads, args):
    for name, got in zip(layer.grads, grads):
        for m in layer.mistakes:
            if m.target != "d" + name:
                continue
            try:
                with np.errstate(all="ignore"):
                    wrong = m.compute(*args)
            except Exception:
                continue
            if wrong is not None and np.shape(wrong) == np.shape(got) and rel_error(got, wrong)[0] < 1e-6:
                return f"(seen in d{name}) {m.hint}"
    return None


def check_central_differences(ck: Checker, layer: Layer, case: Case, scores: dict, seed: int = 1) -> None:
    """The student's backward against central differences of the student's own forward (float64, h = 1e-6)."""
    outs, cache, _ = _forward(ck, layer, case)
    rng = np.random.default_rng(seed)
    douts = [rng.standard_normal(np.shape(o)) if np.ndim(o) else 0.5 + rng.random() for o in outs]
    grads = _backward(ck, layer, douts, cache)
    for name, got in zip(layer.grads, grads):
        x = case.inputs[name].copy()
        base = _copies(case)

        def f(base=base, name=name, x=x):
            args = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()}
            args[name] = x.copy()
            res = ck.call(layer.forward, *args.values(), **case.params)
            return sum(float(np.sum(np.asarray(o) * d)) for o, d in zip(res[:len(layer.outputs)], douts))

        num = numerical_gradient(f, x)
        err = ck.expect_close("d" + name, got, num, tol=FD_TOL, where=_where(case) + " against central differences")
        scores[name] = max(scores.get(name, 0.0), err)


def _scores(scores: dict) -> str:
    return ", ".join(f"d{k} {v:.1e}" for k, v in scores.items())


@contextlib.contextmanager
def _shape_hints(layer: Layer):
    try:
        yield
    except CheckFailed as f:
        name = f.what.split(" ", 1)[0]
        if f.hint is None and name in layer.shape_hints:
            f.hint = layer.shape_hints[name]
        raise


def check_layer(ck: Checker, layer: Layer, cases: list, fd_cases: list) -> None:
    """Shapes, values, gradients against the reference and central differences, then hidden cases."""
    shown = [c for c in cases if not c.hidden]
    hidden = [c for c in cases if c.hidden]
    refs = {id(c): reference_run(layer, c, seed=i) for i, c in enumerate(cases)}

    with ck.check(f"shapes: {len(shown)} cases"), _shape_hints(layer):
        for c in shown:
            outs, cache, _ = _forward(ck, layer, c)
            ref_outs, douts, _, _ = refs[id(c)]
            for name, got, exp in zip(layer.outputs, outs, ref_outs):
                ck.expect_shape(name, ck.expect_array(name, got), exp.shape, _where(c))
            if c.grad and layer.grads:
                grads = _backward(ck, layer, douts, cache)
                for name, g in zip(layer.grads, grads):
                    ck.expect_shape("d" + name, ck.expect_array("d" + name, g), np.shape(c.inputs[name]), _where(c))

    worst = 0.0
    ck.title = "values"
    try:
        for c in shown:
            worst = max(worst, check_values(ck, layer, c, refs[id(c)]))
    except CheckFailed as f:
        f.what = f"values against {layer.ref_name}: {f.what}"
        raise
    ck.passed(f"values against {layer.ref_name}: {len(shown)} cases; worst relative error {worst:.1e}")

    if layer.grads:
        scores: dict = {}
        try:
            for c in shown:
                if c.grad:
                    check_gradients(ck, layer, c, refs[id(c)], scores)
        except CheckFailed as f:
            f.what = f"gradients against {layer.ref_name}: {f.what}"
            raise
        ck.passed(f"gradients against {layer.ref_name} (relative error per input): {_scores(scores)}")
        scores = {}
        try:
            for c in fd_cases:
                check_central_differences(ck, layer, c, scores)
        except CheckFailed as f:
            f.what = f"gradients against central differences: {f.what}"
            if f.hint is None:
                f.hint = ("your backward disagrees with your own forward: the forward passed, so the chain rule "
                          "in backward has a mistake")
            raise
        ck.passed(f"gradients against central differences (float64, h=1e-6): {_scores(scores)}")

    if hidden:
        try:
            for c in hidden:
                check_values(ck, layer, c, refs[id(c)])
                if c.grad and layer.grads:
                    check_gradients(ck, layer, c, refs[id(c)], {})
        except CheckFailed as f:
            f.what = f"hidden cases: {f.what}"
            raise
        ck.passed(f"hidden cases: {len(hidden)}")



def batch_factors(input_name: str = "x"):
    """Constant-factor hints for a layer: a gradient N or 1/N times the expected one (N = the batch size)."""

    def factors(case):
        n = float(np.shape(case.inputs[input_name])[0])
        return {"N": (n, "a layer's gradient has no factor N: check for an extra sum or a missing mean"),
                "1/N": (1.0 / n, "a layer's gradient is a sum over the batch, not a mean (the loss holds the 1/N)")}

    return factors

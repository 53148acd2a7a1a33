"""Exercise 'gradcheck': central differences and the relative-error score, checked against deepbox's autograd."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import CheckFailed, rel_error


def _autograd(fn_deepbox, x, dout=None):
    import deepbox

    t = deepbox.tensor(x.copy(), requires_grad=True)
    y = fn_deepbox(t)
    (y if dout is None else (y * deepbox.tensor(dout)).sum()).backward()
    return t.grad.numpy()


# (label, numpy function, the same in deepbox) -- scalar-valued
_SCALAR = [
    ("sum(sin(x) * x^2), shape (3, 4)", lambda x: float(np.sum(np.sin(x) * x ** 2)),
     lambda t: (t.sin() * t ** 2).sum(), (3, 4)),
    ("log(sum(exp(x))), shape (6,)", lambda x: float(np.log(np.sum(np.exp(x)))),
     lambda t: t.exp().sum().log(), (6,)),
    ("sum(x^3) / 3, shape (2, 2, 2)", lambda x: float(np.sum(x ** 3) / 3), lambda t: (t ** 3).sum() / 3, (2, 2, 2)),
]
_ARRAY = [
    ("tanh(x @ A), x (3, 4)", (3, 4)),
    ("x * exp(-x^2), x (5,)", (5,)),
]


def _array_fn(label, seed=0):
    r = np.random.default_rng(seed)
    if label.startswith("tanh"):
        a = r.standard_normal((4, 2))
        import deepbox

        return (lambda x: np.tanh(x @ a)), (lambda t: (t @ deepbox.tensor(a)).tanh()), (3, 2)
    return (lambda x: x * np.exp(-x ** 2)), (lambda t: t * (-(t ** 2)).exp()), (5,)


def _check_rel_error(ck):
    with ck.check("rel_error"):
        r = np.random.default_rng(22)
        for a, b in [(np.array([1.0, 2.0]), np.array([1.0, 2.5])),
                     (r.standard_normal((3, 3)), r.standard_normal((3, 3))),
                     (np.zeros(4), np.zeros(4)), (np.array([1e-12, 3.0]), np.array([2e-12, 3.0])),
                     (np.array([-5.0]), np.array([5.0]))]:
            got = ck.call("rel_error", a.copy(), b.copy())
            exp = rel_error(a, b)[0]
            if not np.isscalar(got) and np.ndim(got) != 0:
                raise CheckFailed(f"rel_error returned an array of shape {np.shape(got)}, expected one number",
                                  hint="the score is the largest relative error over all elements: np.max(...)")
            if not np.isclose(float(got), exp, rtol=1e-12, atol=0) and not (exp == 0 and got == 0):
                hint = None
                diff = np.abs(a - b)
                with np.errstate(all="ignore"):
                    if np.isclose(float(got), float(np.max(diff / np.maximum(np.abs(a), 1e-8))), rtol=1e-9):
                        hint = "divide by |a| + |b| (symmetric), not by |a| alone"
                    elif np.isnan(float(got)):
                        hint = "0 / 0: keep the denominator at least 1e-8"
                    elif np.isclose(float(got), float(np.mean(diff / np.maximum(np.abs(a) + np.abs(b), 1e-8)))):
                        hint = "the score is the largest (np.max) relative error, not the mean"
                raise CheckFailed(f"rel_error({a.tolist()}, {b.tolist()}) = {got!r}, expected {exp!r}", hint=hint)


def _run_numerical(ck, fname, f, x, *extra, h=1e-5):
    x_in = x.copy()
    got = ck.call(fname, f, x_in, *extra, h=h)
    if not np.allclose(x_in, x, rtol=0, atol=1e-12):
        raise CheckFailed(f"`{fname}` left x changed: x[i] must be restored after each evaluation",
                          hint="save old = x[i]; set x[i] = old + h, evaluate; x[i] = old - h, evaluate; x[i] = old")
    return got


def _mistake_hint(ck, fname, f, x, got, exp, h=1e-5):
    """Compare with the one-sided difference and with a missing factor 2."""
    fwd = np.zeros_like(x)
    f0 = f(x.copy())
    for i in np.ndindex(x.shape):
        xp = x.copy()
        xp[i] += h
        fwd[i] = (f(xp) - f0) / h
    if rel_error(got, fwd)[0] < 1e-6:
        return ("that is the one-sided difference (f(x+h) - f(x)) / h, accurate to O(h) only: use the central "
                "difference (f(x+h) - f(x-h)) / (2h), accurate to O(h^2)")
    if rel_error(got, 2 * exp)[0] < 1e-5:
        return "central differences divide by 2h, the distance between x - h and x + h"
    return None


def _check_numerical(ck):
    worst = 0.0
    r = np.random.default_rng(23)
    for label, f, fd, shape in _SCALAR:
        x = r.standard_normal(shape)
        exp = _autograd(fd, x)
        got = _run_numerical(ck, "numerical_gradient", f, x)
        try:
            worst = max(worst, ck.expect_close("grad", got, exp, tol=1e-7, where=f" (case '{label}')"))
        except CheckFailed as e:
            e.what = "numerical_gradient against deepbox's autograd: " + e.what
            e.hint = _mistake_hint(ck, "numerical_gradient", f, x, got, exp) or e.hint
            raise
    ck.passed(f"numerical_gradient against deepbox's autograd: {len(_SCALAR)} functions; worst relative error "
              f"{worst:.1e}")
    worst = 0.0
    for label, _ in _ARRAY:
        f, fd, out_shape = _array_fn(label)
        x = r.standard_normal(_ARRAY[[a for a, _ in _ARRAY].index(label)][1])
        dout = r.standard_normal(out_shape)
        exp = _autograd(fd, x, dout)
        got = _run_numerical(ck, "numerical_gradient_array", f, x, dout)
        try:
            worst = max(worst, ck.expect_close("grad", got, exp, tol=1e-7, where=f" (case '{label}')"))
        except CheckFailed as e:
            e.what = "numerical_gradient_array against deepbox's autograd: " + e.what
            if e.hint is None:
                e.hint = "the gradient of sum(f(x) * dout): weigh each output by dout before summing"
            raise
    ck.passed(f"numerical_gradient_array against deepbox's autograd: {len(_ARRAY)} functions; worst relative error "
              f"{worst:.1e}")
    with ck.check("hidden cases: 2"):
        x = r.standard_normal((2, 3, 2))
        f = lambda z: float(np.sum(np.cos(z) * z))
        exp = _autograd(lambda t: (t.cos() * t).sum(), x)
        ck.expect_close("grad", _run_numerical(ck, "numerical_gradient", f, x), exp, tol=1e-7, hidden=True)
        x = r.standard_normal(1)
        exp = _autograd(lambda t: (t ** 4).sum(), x)
        ck.expect_close("grad", _run_numerical(ck, "numerical_gradient", lambda z: float(np.sum(z ** 4)), x), exp,
                        tol=1e-7, hidden=True)


EXERCISE = Exercise(
    name="gradcheck", lecture="3-4", summary="central differences and the relative-error score, the checks' own tool",
    parts=[Part("relative error (rel_error)", ("rel_error",), _check_rel_error, swap_ok=False),
           Part("central differences (numerical_gradient, numerical_gradient_array)",
                ("numerical_gradient", "numerical_gradient_array"), _check_numerical, swap_ok=False)],
    folder=os.path.dirname(os.path.abspath(__file__)))

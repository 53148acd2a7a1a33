"""Exercise 'dropout': F.dropout (inverted) on arrays; checked by its properties, as a random layer must be."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import FD_TOL, CheckFailed, numerical_gradient
from deepbox.exercises.training import train_mlp


def _fwd(ck, x, p, training, seed):
    x_in = x.copy()
    res = ck.call("dropout_forward", x_in, p=p, training=training, rng=np.random.default_rng(seed))
    if not isinstance(res, tuple) or len(res) != 2:
        raise CheckFailed("`dropout_forward` should return (out, cache)")
    out = ck.expect_array("out", res[0])
    if not np.array_equal(x_in, x):
        raise CheckFailed("`dropout_forward` changed its input `x` in place",
                          hint="build a new array (x * mask / (1 - p)) instead of writing into x")
    return out, res[1]


def _reference_scale(x, p):
    """The factor F.dropout gives the elements it keeps (1 / (1 - p))."""
    import deepbox
    import deepbox.nn.functional as F
    from deepbox.exercises.checking import reference_mode

    with reference_mode():
        out = F.dropout(deepbox.tensor(x), p=p, training=True).numpy()
    kept = out != 0
    return float(np.median(out[kept] / x[kept]))


def _check(ck):
    r = np.random.default_rng(15)
    x = r.standard_normal((4, 5)) + 3.0        # away from 0: a zero output means dropped
    with ck.check("shapes"):
        for shape in [(4, 5), (2, 3, 4, 4), (1, 7)]:
            out, _ = _fwd(ck, r.standard_normal(shape) + 3, 0.5, True, 0)
            ck.expect_shape("out", out, shape)

    with ck.check("eval mode, p = 0 and p = 1"):
        out, _ = _fwd(ck, x, 0.5, False, 0)
        if not np.array_equal(out, x):
            raise CheckFailed("in eval mode (training=False) the output must equal x",
                              hint="dropout is the identity at test time: inverted dropout scales during training")
        out, _ = _fwd(ck, x, 0.0, True, 0)
        if not np.array_equal(out, x):
            raise CheckFailed("with p = 0 the output must equal x", hint="nothing is dropped and the scale is 1")
        out, _ = _fwd(ck, x, 1.0, True, 0)
        if not (np.all(np.isfinite(out)) and np.all(out == 0)):
            raise CheckFailed("with p = 1 the output must be all zeros (and finite)",
                              hint="p = 1 drops everything: handle it before dividing by 1 - p")

    big = r.standard_normal((200, 500)) + 3.0
    with ck.check("kept values against F.dropout, drop rate and mean on 100,000 elements"):
        for p in (0.5, 0.2, 0.8):
            out, _ = _fwd(ck, big, p, True, 1)
            kept = out != 0
            rate = 1 - kept.mean()
            ref = _reference_scale(big, p)
            scale = out[kept] / big[kept]
            if kept.any() and not np.allclose(scale, ref, rtol=1e-9):
                s = float(np.median(scale))
                hint = None
                if np.isclose(s, 1.0):
                    hint = "inverted dropout: scale the kept elements by 1 / (1 - p), so the expected output is x"
                elif np.isclose(s, 1 - p):
                    hint = "scale by 1 / (1 - p), not by (1 - p)"
                elif np.isclose(s, 1 / p):
                    hint = "scale by 1 / (1 - p), the probability of keeping, not by 1 / p"
                raise CheckFailed(f"with p = {p}, kept elements are {s:.6g} times x, expected {ref:.6g} "
                                  "(as F.dropout scales them)", hint=hint)
            sd = np.sqrt(p * (1 - p) / big.size)
            if abs(rate - p) > 4 * sd:
                hint = ("p is the probability of dropping an element: keep where rng.random(x.shape) >= p"
                        if abs(rate - (1 - p)) <= 4 * sd else None)
                raise CheckFailed(f"with p = {p}, {rate:.4f} of the elements were dropped, expected {p} "
                                  f"(+- {4 * sd:.4f})", hint=hint)
            if abs(out.mean() - big.mean()) > 0.05 * abs(big.mean()):
                raise CheckFailed(f"with p = {p}, the mean changed from {big.mean():.4f} to {out.mean():.4f}")

    with ck.check("the mask comes from rng"):
        a, _ = _fwd(ck, x, 0.5, True, 7)
        b, _ = _fwd(ck, x, 0.5, True, 7)
        c, _ = _fwd(ck, big, 0.5, True, 8)
        d, _ = _fwd(ck, big, 0.5, True, 9)
        if not np.array_equal(a, b) or np.array_equal(c, d):
            raise CheckFailed("the same generator state must give the same mask, and another state another mask",
                              hint="draw the mask with the rng argument (rng.random(x.shape)), not with np.random")

    scores = {}
    with ck.check("gradient: dout times your forward's mask and scale"):
        for p, training, shape in [(0.5, True, (4, 5)), (0.3, True, (2, 3, 4, 4)), (0.5, False, (3, 3))]:
            xx = r.standard_normal(shape) + 3.0
            out, cache = _fwd(ck, xx, p, training, 3)
            dout = r.standard_normal(shape)
            d_in = dout.copy()
            dx = ck.call("dropout_backward", d_in, cache)
            if not np.array_equal(d_in, dout):
                raise CheckFailed("`dropout_backward` changed dout in place", hint="return a new array: dout * mask")
            where = f" (p = {p}, {'training' if training else 'eval'})"
            scores["x"] = max(scores.get("x", 0.0), ck.expect_close("dx", dx, dout * out / xx, where=where))

    with ck.check("gradient against central differences (float64, h=1e-6, the mask held fixed)"):
        xx = r.standard_normal((3, 4)) + 3.0
        dout = r.standard_normal((3, 4))
        _, cache = _fwd(ck, xx, 0.4, True, 5)
        dx = ck.call("dropout_backward", dout.copy(), cache)
        probe = xx.copy()
        num = numerical_gradient(lambda: float(np.sum(_fwd(ck, probe, 0.4, True, 5)[0] * dout)), probe)
        ck.expect_close("dx", dx, num, tol=FD_TOL)

    with ck.check("hidden cases: 2"):
        for p, shape in [(0.9, (50, 40, 10)), (0.05, (20000,))]:
            xx = r.standard_normal(shape) + 3.0
            out, cache = _fwd(ck, xx, p, True, 11)
            kept = out != 0
            sd = np.sqrt(p * (1 - p) / xx.size)
            if abs((1 - kept.mean()) - p) > 4 * sd or not np.allclose(out[kept], xx[kept] / (1 - p), rtol=1e-9):
                raise CheckFailed("a hidden case is wrong (its inputs are not shown)")
            dout = r.standard_normal(shape)
            ck.expect_close("dx", ck.call("dropout_backward", dout.copy(), cache), dout * out / xx, hidden=True)


def _swap(student, part):
    import deepbox
    import deepbox.nn.functional as F
    from deepbox.exercises.layer import Layer
    from deepbox.exercises.swap import layer_function

    lay = Layer(forward="dropout_forward", backward="dropout_backward", grads=("x",), reference=None, ref_name="")
    fn = layer_function(student, lay)

    def dropout(input, p=0.5, training=True, inplace=False):
        # a generator seeded from deepbox's, so deepbox.manual_seed makes runs repeat
        seed = int(deepbox.randint(0, 2**31 - 1, (1,)).item())
        return fn(input, p=p, training=training, rng=np.random.default_rng(seed))

    return [(F, "dropout", dropout)]


def _train(ex, student, parts, **kw):
    return train_mlp(ex, student, parts, dropout=0.2, hidden=(256,), **kw)


EXERCISE = Exercise(
    name="dropout", lecture="6-8", summary="F.dropout: inverted dropout, 1/(1-p) scaling, identity in eval mode",
    parts=[Part("forward and backward (dropout_forward, dropout_backward)", ("dropout_forward", "dropout_backward"),
                _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)

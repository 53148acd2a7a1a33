"""Exercise 'conv2d': F.conv2d with loops (part 1) and with im2col and one matrix product (part 2)."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import CheckFailed, Mistake
from deepbox.exercises.layer import Case, Layer, batch_factors, check_layer
from deepbox.exercises.training import train_lenet


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.conv2d(t["x"], t["w"], t["b"], stride=params["stride"], padding=params["padding"])


def _flipped(i, p, d):
    import deepbox
    import deepbox.nn.functional as F

    w = np.ascontiguousarray(i["w"][:, :, ::-1, ::-1])
    return F.conv2d(deepbox.tensor(i["x"]), deepbox.tensor(w), deepbox.tensor(i["b"]), stride=p["stride"],
                    padding=p["padding"]).numpy()


def _windows(i, p):
    x, w = i["x"], i["w"]
    s, pad = p["stride"], p["padding"]
    kh, kw = w.shape[2:]
    ho = (x.shape[2] + 2 * pad - kh) // s + 1
    wo = (x.shape[3] + 2 * pad - kw) // s + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return xp, ho, wo, s, kh, kw, pad


def _dx_assigned(i, p, d):
    """dx when each window's contribution is assigned (=) instead of added (+=)."""
    xp, ho, wo, s, kh, kw, pad = _windows(i, p)
    w = i["w"]
    dxp = np.zeros_like(xp)
    for a in range(ho):
        for b in range(wo):
            dxp[:, :, a * s:a * s + kh, b * s:b * s + kw] = np.einsum("nf,fcpq->ncpq", d[:, :, a, b], w)
    h, wd = i["x"].shape[2:]
    return dxp[:, :, pad:pad + h, pad:pad + wd]


def _dw_last_only(i, p, d):
    """dw when each position's contribution overwrites the last one's."""
    xp, ho, wo, s, kh, kw, _ = _windows(i, p)
    a, b = ho - 1, wo - 1
    return np.einsum("nf,ncpq->fcpq", d[:, :, a, b], xp[:, :, a * s:a * s + kh, b * s:b * s + kw])


_SHAPES = {
    "out": "the output side is HO = (H + 2*padding - KH) // stride + 1 (WO likewise)",
    "dx": "dx has x's shape: cut the padding off the padded gradient, "
          "dxpad[:, :, padding:padding+H, padding:padding+W]",
    "db": "db sums dout over the batch and both spatial axes: dout.sum(axis=(0, 2, 3))",
    "dw": "dw has the weight's shape (F, C, KH, KW)",
}
_MISTAKES = [
    Mistake("out", "the kernel is flipped: deep learning's convolution is a cross-correlation, "
                   "w[f, c, p, q] multiplies xpad[n, c, i*stride + p, j*stride + q]", _flipped),
    Mistake("dx", "overlapping windows: add (+=) each window's gradient into dxpad, don't assign (=)", _dx_assigned),
    Mistake("dw", "dw must add up (+=) the contribution of every output position", _dw_last_only),
]


def _layer(forward, backward):
    return Layer(forward=forward, backward=backward, grads=("x", "w", "b"), reference=_reference, ref_name="F.conv2d",
                 factors=batch_factors("x"), mistakes=_MISTAKES, shape_hints=_SHAPES)


NAIVE = _layer("conv2d_naive_forward", "conv2d_naive_backward")
IM2COL = _layer("conv2d_im2col_forward", "conv2d_im2col_backward")
LAYER = NAIVE


def _case(label, r, x, w, stride, padding, hidden=False):
    return Case(label, {"x": r.standard_normal(x), "w": r.standard_normal(w), "b": r.standard_normal(w[0])},
                {"stride": stride, "padding": padding}, hidden=hidden)


def _cases():
    r = np.random.default_rng(9)
    hand = Case("hand-made: one 4x4 image, one 2x2 filter", {
        "x": np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4), "w": np.array([[[[1.0, 0.0], [0.0, -1.0]]]]),
        "b": np.array([0.5])}, {"stride": 1, "padding": 0})
    return [
        hand,
        _case("random (2, 3, 7, 7), 4 3x3 filters, padding 1", r, (2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
        _case("stride 2, padding 1, odd sizes (2, 2, 9, 7)", r, (2, 2, 9, 7), (3, 2, 3, 3), 2, 1),
        _case("batch of one, 2x3 kernel", r, (1, 2, 5, 6), (2, 2, 2, 3), 1, 0),
        _case("1x1 convolution", r, (2, 4, 3, 3), (5, 4, 1, 1), 1, 0),
        _case("hidden", r, (3, 2, 8, 8), (2, 2, 4, 4), 3, 2, hidden=True),
        _case("hidden", r, (2, 3, 5, 5), (2, 3, 5, 5), 1, 0, hidden=True),
    ]


def _fd_cases():
    r = np.random.default_rng(10)
    return [_case("(2, 2, 4, 4), 3x3 filters, stride 2, padding 1", r, (2, 2, 4, 4), (3, 2, 3, 3), 2, 1)]


def _check_naive(ck):
    check_layer(ck, NAIVE, _cases(), _fd_cases())


def _unfold_ref(x, kh, kw, stride, padding):
    import deepbox
    import deepbox.nn.functional as F

    u = F.unfold(deepbox.tensor(x), (kh, kw), padding=padding, stride=stride).numpy()  # (N, C*KH*KW, L)
    return u.transpose(0, 2, 1).reshape(-1, u.shape[1])


def _fold_ref(cols, x_shape, kh, kw, stride, padding):
    import deepbox
    import deepbox.nn.functional as F

    n, c, h, w = x_shape
    u = cols.reshape(n, -1, c * kh * kw).transpose(0, 2, 1)
    return F.fold(deepbox.tensor(np.ascontiguousarray(u)), (h, w), (kh, kw), padding=padding, stride=stride).numpy()


def _check_im2col(ck):
    cases = [c for c in _cases() if not c.hidden]
    worst = 0.0
    for c in cases:
        x, kh, kw = c.inputs["x"], *c.inputs["w"].shape[2:]
        s, p = c.params["stride"], c.params["padding"]
        where = f" (case '{c.label}')"
        got = ck.call("im2col", x.copy(), kh, kw, s, p)
        exp = _unfold_ref(x, kh, kw, s, p)
        try:
            worst = max(worst, ck.expect_close("cols", got, exp, where=where))
        except CheckFailed as f:
            f.what = "im2col against F.unfold: " + f.what
            if f.hint is None:
                f.hint = ("one row per output position in (n, i, j) order, one column per (c, p, q) in that order: "
                          "build (N, C, KH, KW, HO, WO), then transpose to (N, HO, WO, C, KH, KW) and reshape")
            raise
        g = np.random.default_rng(1).standard_normal(exp.shape)
        got = ck.call("col2im", g.copy(), x.shape, kh, kw, s, p)
        try:
            worst = max(worst, ck.expect_close("x", got, _fold_ref(g, x.shape, kh, kw, s, p), where=where))
        except CheckFailed as f:
            f.what = "col2im against F.fold: " + f.what
            if f.hint is None:
                f.hint = "col2im adds (+=) every row back into its window (windows overlap), then cuts the padding off"
            raise
    ck.passed(f"im2col against F.unfold and col2im against F.fold: {len(cases)} cases; worst relative error "
              f"{worst:.1e}")
    check_layer(ck, IM2COL, _cases(), _fd_cases())


def _ints(v, what):
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise NotImplementedError(f"your conv2d takes one {what} for both sides, got {tuple(v)}")
        v = v[0]
    if isinstance(v, str):
        raise NotImplementedError(f"your conv2d takes an integer {what}, got {v!r}")
    return int(v)


def _swap(student, part):
    import deepbox
    import deepbox.nn.functional as F
    from deepbox import nn
    from deepbox.exercises.swap import layer_function

    lay = IM2COL if part.startswith("im2col") else NAIVE
    fn = layer_function(student, lay)

    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if _ints(dilation, "dilation") != 1 or groups != 1:
            raise NotImplementedError("your conv2d covers dilation 1 and groups 1")
        if bias is None:
            bias = deepbox.zeros(weight.shape[0], dtype=weight.dtype)
        return fn(input, weight, bias, stride=_ints(stride, "stride"), padding=_ints(padding, "padding"))

    def forward(self, input):
        if self.padding_mode != "zeros":
            raise NotImplementedError("your conv2d pads with zeros only")
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    return [(F, "conv2d", conv2d), (nn.Conv2d, "forward", forward)]


EXERCISE = Exercise(
    name="conv2d", lecture="9-10", summary="F.conv2d: loops first, then im2col and one matrix product",
    parts=[Part("loops (conv2d_naive_forward, conv2d_naive_backward)",
                ("conv2d_naive_forward", "conv2d_naive_backward"), _check_naive),
           Part("im2col (im2col, col2im, conv2d_im2col_forward, conv2d_im2col_backward)",
                ("im2col", "col2im", "conv2d_im2col_forward", "conv2d_im2col_backward"), _check_im2col)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=train_lenet)

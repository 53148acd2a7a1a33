"""Convolutions, unfold/fold: values and gradients (input, weight, bias) against PyTorch, plus gradcheck."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as F
from tests.helpers import check_op

rng = np.random.default_rng(0)


def arr(*shape):
    return rng.standard_normal(shape)


def fn(x):
    """The functional namespace of ``x``'s framework, so one lambda runs in both."""
    return F if isinstance(x, deepbox.Tensor) else TF


# (N, C, H, W, O, k, stride, padding, dilation, groups): odd sizes, batch 1, depthwise, 'same'/'valid'
CONV2D_GRID = [
    (1, 1, 7, 5, 3, 3, 1, 0, 1, 1),
    (2, 3, 8, 8, 4, 3, 1, 1, 1, 1),
    (2, 3, 9, 7, 4, (3, 2), (2, 1), (1, 0), 1, 1),
    (1, 4, 9, 9, 6, 3, 2, 2, 2, 2),
    (2, 4, 6, 7, 4, 3, 1, 1, 1, 4),          # depthwise
    (2, 4, 6, 7, 8, 3, 1, 1, 1, 4),          # depthwise, channel multiplier 2
    (2, 3, 5, 6, 2, 1, 1, 0, 1, 1),          # 1x1
    (2, 2, 7, 7, 3, 4, 1, "same", 1, 1),     # even kernel: asymmetric 'same'
    (1, 2, 7, 8, 3, 3, 1, "same", 2, 1),
    (2, 2, 7, 8, 3, 3, 1, "valid", 1, 1),
    (3, 6, 5, 5, 6, 3, 3, 1, 1, 3),
    (2, 1, 28, 28, 6, 5, 1, 2, 1, 1),        # LeNet layer 1 (one channel: the direct kernel / tap-major im2col)
    (2, 1, 6, 9, 4, (2, 3), 1, "same", 1, 1),  # one channel, even kernel, asymmetric 'same'
    (1, 1, 5, 6, 2, 3, 1, 4, 1, 1),          # one channel, padding beyond the kernel
    (2, 1, 9, 9, 20, 3, 1, 1, 1, 1),         # one channel, more outputs than the direct kernel takes
    (2, 6, 14, 14, 16, 5, 1, 0, 1, 1),       # LeNet layer 2
    (2, 16, 9, 8, 4, 3, 2, 1, 1, 1),         # >= 16 channels: dx from one GEMM, strided, clipped taps
    (1, 16, 7, 7, 3, 3, 1, 2, 2, 1),
]


@pytest.mark.parametrize("case", CONV2D_GRID, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_float64(case, bias):
    n, c, h, w, o, k, s, p, d, g = case
    kk = (k, k) if isinstance(k, int) else k
    ins = [arr(n, c, h, w), arr(o, c // g, *kk)] + ([arr(o)] if bias else [])
    if bias:
        check_op(lambda x, wt, b: fn(x).conv2d(x, wt, b, s, p, d, g), *ins)
    else:
        check_op(lambda x, wt: fn(x).conv2d(x, wt, None, s, p, d, g), *ins)


@pytest.mark.parametrize("case", CONV2D_GRID[:6], ids=str)
def test_conv2d_float32(case):
    n, c, h, w, o, k, s, p, d, g = case
    kk = (k, k) if isinstance(k, int) else k
    check_op(lambda x, wt, b: fn(x).conv2d(x, wt, b, s, p, d, g),
             arr(n, c, h, w), arr(o, c // g, *kk), arr(o), dtype=np.float32)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_conv2d_padding_modes(mode, padding):
    tm = torch.nn.Conv2d(3, 4, 3, padding=padding, padding_mode=mode).double()
    dm = deepbox.nn.Conv2d(3, 4, 3, padding=padding, padding_mode=mode).double()
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    x = arr(2, 3, 6, 7)
    xt = torch.tensor(x, requires_grad=True)
    xd = deepbox.tensor(x, requires_grad=True)
    yt, yd = tm(xt), dm(xd)
    np.testing.assert_allclose(yd._data, yt.detach().numpy(), rtol=1e-7, atol=1e-9)
    cot = arr(*yt.shape)
    yt.backward(torch.tensor(cot))
    yd.backward(deepbox.tensor(cot))
    np.testing.assert_allclose(xd.grad._data, xt.grad.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dm.weight.grad._data, tm.weight.grad.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("case", [
    (2, 3, 9, 4, 3, 1, 0, 1, 1), (1, 4, 8, 6, 3, 2, 1, 2, 2), (2, 4, 7, 4, 3, 1, "same", 1, 4),
    (2, 2, 10, 3, 4, 3, 2, 1, 1), (2, 3, 7, 2, 2, 1, "valid", 3, 1),
    (3, 1, 11, 5, 3, 1, 2, 1, 1),            # one channel: the direct kernel on a height-1 image
], ids=str)
def test_conv1d(case):
    n, c, l, o, k, s, p, d, g = case
    check_op(lambda x, wt, b: fn(x).conv1d(x, wt, b, s, p, d, g),
             arr(n, c, l), arr(o, c // g, k), arr(o))


# (N, C_in, H, W, C_out, k, stride, padding, output_padding, groups, dilation)
CONVT_GRID = [
    (2, 3, 4, 5, 4, 3, 1, 0, 0, 1, 1),
    (1, 4, 5, 4, 2, 3, 2, 1, 1, 1, 1),
    (2, 4, 3, 4, 6, 2, 2, 0, 0, 2, 1),
    (2, 2, 4, 4, 4, (3, 2), (2, 3), (1, 0), (1, 2), 2, 1),
    (1, 3, 5, 5, 3, 3, 2, 2, 1, 3, 2),
    (2, 2, 3, 3, 3, 4, 3, 1, 2, 1, 1),       # output_padding beyond the full output: zero rows + bias
]


@pytest.mark.parametrize("case", CONVT_GRID, ids=str)
def test_conv_transpose2d(case):
    n, c, h, w, o, k, s, p, op, g, d = case
    kk = (k, k) if isinstance(k, int) else k
    check_op(lambda x, wt, b: fn(x).conv_transpose2d(x, wt, b, s, p, op, g, d),
             arr(n, c, h, w), arr(c, o // g, *kk), arr(o))


def test_conv_transpose2d_float32_and_1d():
    check_op(lambda x, wt, b: fn(x).conv_transpose2d(x, wt, b, 2, 1, 1),
             arr(2, 4, 5, 5), arr(4, 3, 3, 3), arr(3), dtype=np.float32)
    check_op(lambda x, wt, b: fn(x).conv_transpose1d(x, wt, b, 2, 1, 1, 1, 2),
             arr(2, 4, 6), arr(4, 3, 3), arr(3))


@pytest.mark.parametrize("k,d,p,s", [((2, 3), (1, 2), (1, 0), (2, 1)), (3, 1, 1, 1), (2, 1, 0, 2)], ids=str)
def test_unfold_fold(k, d, p, s):
    check_op(lambda x: fn(x).unfold(x, k, d, p, s), arr(2, 3, 7, 6))
    cols = TF.unfold(torch.zeros(2, 3, 7, 6), k, d, p, s)
    check_op(lambda x: fn(x).fold(x, (7, 6), k, d, p, s), arr(*cols.shape))


def test_unbatched_inputs():
    check_op(lambda x, wt: fn(x).conv2d(x, wt, padding=1),
             arr(3, 5, 5), arr(2, 3, 3, 3))
    check_op(lambda x, wt: fn(x).conv1d(x, wt), arr(3, 7), arr(2, 3, 3))


def test_gradcheck_small():
    x = deepbox.tensor(arr(1, 2, 5, 4), requires_grad=True)
    w = deepbox.tensor(arr(2, 1, 3, 2), requires_grad=True)
    b = deepbox.tensor(arr(2), requires_grad=True)
    assert deepbox.autograd.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 2, 1, (1, 2), 2), (x, w, b))
    wt = deepbox.tensor(arr(2, 3, 2, 2), requires_grad=True)
    bt = deepbox.tensor(arr(3), requires_grad=True)
    assert deepbox.autograd.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1), (x, wt, bt))


def test_channels_last_chain_matches_torch():
    """conv → relu → conv: the second conv receives the first one's channels-last output."""
    x, w1, w2 = arr(2, 3, 8, 8), arr(5, 3, 3, 3), arr(4, 5, 3, 3)
    check_op(lambda x, a, b: fn(x).conv2d(
        (fn(x).conv2d(x, a, padding=1)).relu(), b, stride=2), x, w1, w2)


def test_module_parity_and_repr():
    for tm, dm in [
        (torch.nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3, bias=False),
         deepbox.nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3, bias=False)),
        (torch.nn.Conv1d(4, 2, 5, dilation=2), deepbox.nn.Conv1d(4, 2, 5, dilation=2)),
        (torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
         deepbox.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)),
        (torch.nn.Conv2d(2, 2, 3, padding="same", padding_mode="reflect"),
         deepbox.nn.Conv2d(2, 2, 3, padding="same", padding_mode="reflect")),
    ]:
        assert repr(dm) == repr(tm)
        assert list(dm.state_dict()) == list(tm.state_dict())
        for (kd, pd), (kt, pt) in zip(dm.named_parameters(), tm.named_parameters()):
            assert kd == kt and tuple(pd.shape) == tuple(pt.shape)


def test_default_init_bounds():
    m = deepbox.nn.Conv2d(4, 8, 3)
    bound = 1 / np.sqrt(4 * 9)
    for p in (m.weight, m.bias):
        a = p._data
        assert a.dtype == np.float32 and np.abs(a).max() <= bound and np.abs(a).max() > 0.8 * bound


def test_conv_transpose_output_size():
    tm = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    dm = deepbox.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    x = arr(1, 3, 4, 4).astype(np.float32)
    yt = tm(torch.tensor(x), output_size=(8, 8))
    yd = dm(deepbox.tensor(x), output_size=(8, 8))
    np.testing.assert_allclose(yd._data, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="output_size"):
        dm(deepbox.tensor(x), output_size=(10, 10))


@pytest.mark.parametrize("bad", [
    lambda: F.conv2d(deepbox.randn(1, 3, 5, 5), deepbox.randn(2, 4, 3, 3)),               # channel mismatch
    lambda: F.conv2d(deepbox.randn(1, 3, 2, 2), deepbox.randn(2, 3, 3, 3)),               # kernel too big
    lambda: F.conv2d(deepbox.randn(1, 3, 5, 5), deepbox.randn(2, 3, 3, 3), stride=2, padding="same"),
    lambda: F.conv2d(deepbox.randn(3, 5), deepbox.randn(2, 3, 3, 3)),                     # wrong rank
    lambda: deepbox.nn.Conv2d(3, 4, 3, groups=2),
    lambda: deepbox.nn.Conv2d(3, 4, 3, padding_mode="mirror"),
])
def test_bad_arguments_raise(bad):
    with pytest.raises((ValueError, RuntimeError)):
        bad()


def test_grid_of_strides_and_dilations_float64():
    """A denser sweep without PyTorch's module machinery: every stride/dilation/padding combination."""
    for s, d, p in itertools.product([1, 2, 3], [1, 2], [0, 1, 2]):
        check_op(lambda x, wt, b, s=s, p=p, d=d: fn(x).conv2d(x, wt, b, s, p, d),
                 arr(2, 2, 7, 8), arr(3, 2, 3, 2), arr(3))


def test_workspace_buffers_are_not_shared_while_saved():
    """The same conv twice in one graph (large enough for pooled im2col buffers), run twice over."""
    x, w = arr(8, 16, 24, 24), arr(16, 16, 3, 3) * 0.2
    for _ in range(2):
        check_op(lambda x, w: fn(x).conv2d(fn(x).conv2d(x, w, padding=1).relu(), w, padding=1), x, w)
    check_op(lambda x, w: fn(x).conv2d(x[:, :1], w[:, :1], padding=1) * fn(x).conv2d(x[:, 1:2], w[:, 1:2], padding=1),
             x, w)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", [
    (8, 1, 24, 24, 4, 3, 1, 1, True),      # one channel: tap-major chunks, bias folded into the GEMM
    (8, 3, 24, 32, 5, 3, 2, 1, True),
    (6, 4, 16, 16, 3, 3, 1, 0, False),     # (sizes above the splitter's 32k-element threshold)
    (8, 6, 14, 14, 16, 5, 1, 0, True),     # LeNet-5's conv2: the input gradient by col2im_rows
    (8, 2, 9, 11, 3, 3, 1, 4, True),       # padding beyond the kernel: whole output rows in the padding
])
def test_conv2d_in_image_chunks_split_over_threads(case, threads, monkeypatch):
    """Convolutions run im2col + GEMM (and the input gradient) a few images at a time, the chunks split
    over deepbox's threads with BLAS at one thread; weight gradients are summed over the threads'
    partials. With one image per chunk every path runs many chunks on several threads."""
    from deepbox import kernels
    from deepbox.kernels import conv as conv_mod

    n, c, h, w, o, k, s, p, bias = case
    monkeypatch.setattr(conv_mod, "_CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_mod, "_DX_CHUNK_BYTES", 1)
    old = kernels.threads.num_threads()
    kernels.threads.set_num_threads(threads)
    try:
        x, wt, b = arr(n, c, h, w), arr(o, c, k, k), arr(o) if bias else None
        dx = deepbox.tensor(x, requires_grad=True)
        dw = deepbox.tensor(wt, requires_grad=True)
        db_ = deepbox.tensor(b, requires_grad=True) if bias else None
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(wt, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if bias else None
        yd = F.conv2d(dx, dw, db_, s, p)
        yt = TF.conv2d(tx, tw, tb, s, p)
        g = arr(*yt.shape)
        yd.backward(deepbox.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(yd._data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        for d, t in ((dx, tx), (dw, tw)) + (((db_, tb),) if bias else ()):
            np.testing.assert_allclose(d.grad._data, t.grad.numpy(), rtol=1e-10, atol=1e-12)
    finally:
        kernels.threads.blas_multi()
        kernels.threads.set_num_threads(old)


def test_input_gradient_path_follows_kernel_mode(kernel_mode, monkeypatch):
    """Stride-1 convolutions take the compiled ``col2im_rows`` input gradient in ``numba`` mode
    (values checked against PyTorch above, in both modes); strided ones and ``numpy`` mode never do."""
    from deepbox import kernels

    calls = []
    K = kernels.switch.kernels()
    if K is not None:
        real = K.col2im_rows
        monkeypatch.setattr(K, "col2im_rows", lambda *a: (calls.append(a[1] - a[0]), real(*a)))
    x = deepbox.tensor(arr(3, 4, 9, 9), requires_grad=True)
    w = deepbox.tensor(arr(5, 4, 3, 3))
    F.conv2d(x, w, padding=1).sum().backward()
    assert sum(calls) == (3 if kernel_mode == "numba" else 0)
    calls.clear()
    F.conv2d(x, w, stride=2).sum().backward()
    assert calls == []


@pytest.mark.parametrize("case", [
    (3, 4, 9, 9, 5, 3, 1, 1, 1),       # 'same' 3x3: clipped window rows at every border
    (2, 16, 9, 8, 4, 3, 2, 1, 1),      # stride 2, odd width
    (2, 3, 7, 8, 3, 3, 1, 2, 2),       # dilation 2: per-tap runs, whole window rows in the padding
    (2, 5, 6, 7, 6, 1, 2, 0, 1),       # 1x1 stride 2 (a ResNet shortcut), C_in != C_out
])
def test_compiled_im2col_reads_the_unpadded_input(kernel_mode, monkeypatch, case):
    """With C > 1, ``numba`` mode builds the columns (forward and weight gradient) with the compiled
    ``im2col`` straight from the unpadded input; values and gradients equal PyTorch's in both modes."""
    from deepbox import kernels

    n, c, h, w, o, k, s, p, d = case
    calls = []
    K = kernels.switch.kernels()
    if K is not None:
        real = K.im2col
        monkeypatch.setattr(K, "im2col", lambda *a: (calls.append(a[1] - a[0]), real(*a)))
    x, wt = arr(n, c, h, w), arr(o, c, k, k)
    g = arr(*TF.conv2d(torch.tensor(x), torch.tensor(wt), None, s, p, d).shape)
    for dtype, tol in ((np.float64, dict(rtol=1e-10, atol=1e-12)), (np.float32, dict(rtol=1e-4, atol=1e-5))):
        tx, tw = (torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, wt))
        dx, dw = (deepbox.tensor(a.astype(dtype), requires_grad=True) for a in (x, wt))
        yt, yd = TF.conv2d(tx, tw, None, s, p, d), F.conv2d(dx, dw, None, s, p, d)
        yt.backward(torch.tensor(g.astype(dtype)))
        yd.backward(deepbox.tensor(g.astype(dtype)))
        np.testing.assert_allclose(yd._data, yt.detach().numpy(), **tol)
        np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), **tol)
        np.testing.assert_allclose(dw.grad._data, tw.grad.numpy(), **tol)
    # forward and weight gradient each read every image once, per dtype
    assert sum(calls) == (4 * n if kernel_mode == "numba" else 0), calls


# (N, C, H, W, O, k, stride, padding): output widths below, at and above the 7-pixel block, odd sizes,
# C_in != C_out, stride 2 (rows and columns), 1x1, padding beyond the border, asymmetric 'same', C not in sixteens
DIRECT_GRID = [
    (3, 16, 9, 9, 16, 3, 1, 1),
    (2, 16, 11, 15, 32, 3, 2, 1),
    (2, 3, 8, 5, 16, 3, 1, 0),
    (2, 32, 7, 7, 16, 3, 1, 1),
    (2, 3, 6, 13, 48, 1, 2, 0),
    (2, 16, 10, 9, 16, 5, 1, 2),
    (1, 3, 9, 8, 16, 4, 1, "same"),
    (2, 16, 5, 6, 16, 3, 1, 3),
    (2, 6, 14, 13, 16, 5, 1, 0),       # LeNet-5's conv2: window rows of 30 floats, a partial weight-gradient block
    (1, 16, 6, 7, 16, 4, 1, "same"),   # asymmetric 'same' (1 above, 2 below) through all three kernels
]


@pytest.mark.parametrize("case", DIRECT_GRID, ids=str)
def test_direct_kernel_float32(kernel_mode, monkeypatch, case):
    """float32 convolutions with output channels in sixteens run the register-blocked direct kernels in
    ``numba`` mode (forward; with input channels in sixteens too, the weight gradient and stride-1 input
    gradients); values and all gradients agree with PyTorch in float64 in both modes, at float32 precision."""
    n, c, h, w, o, k, s, p = case
    calls = []
    if kernel_mode == "numba":
        from deepbox.kernels import _numba_conv

        real, real_dw = _numba_conv.direct_conv, _numba_conv.direct_weight_grad
        monkeypatch.setattr(_numba_conv, "direct_conv", lambda cc, ss: (calls.append((cc, ss)), real(cc, ss))[1])
        monkeypatch.setattr(_numba_conv, "direct_weight_grad", lambda *a: (calls.append("dw"), real_dw(*a)))
    x, wt, b = arr(n, c, h, w), arr(o, c, k, k) / (c * k * k) ** 0.5, arr(o)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    yt = TF.conv2d(tx, tw, tb, s, p)
    g = arr(*yt.shape)
    yt.backward(torch.tensor(g))
    dx, dw, db = (deepbox.tensor(a.astype(np.float32), requires_grad=True) for a in (x, wt, b))
    yd = F.conv2d(dx, dw, db, s, p)
    yd.backward(deepbox.tensor(g.astype(np.float32)))
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(yd._data, yt.detach().numpy(), **tol)
    for d, t in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(d.grad._data, t.grad.numpy(), **tol)
    if kernel_mode == "numpy":
        assert calls == []
    else:
        dx_direct = s == 1 and c % 16 == 0 and (p == "same" or p <= k - 1)
        dw_direct = k * c >= 16
        calls = [a for a, _ in itertools.groupby(calls)]       # one "dw" per thread's chunk
        assert calls == [(c, s)] + (["dw"] if dw_direct else []) + ([(o, 1)] if dx_direct else []), calls
    # the kernel itself against a plain loop: 9 columns (a block that overhangs the row's end), output
    # row 1's last window row below the input (zeros there)
    if kernel_mode == "numba":
        xs = rng.standard_normal((1, 3, 9 * c)).astype(np.float32)
        wm = rng.standard_normal((3 * 3 * c, 16)).astype(np.float32)
        out = np.empty((1, 2, 9 * 16), np.float32)
        real(c, 1)(0, 1, xs, wm, out, 3, 3, 0, 1)
        xpad = np.zeros((4, 11, c), np.float32)
        xpad[:3, 1:10] = xs.reshape(3, 9, c)
        want = np.zeros((2, 9, 16))
        for oy in range(2):
            for ox in range(9):
                want[oy, ox] = xpad[oy:oy + 3, ox:ox + 3].reshape(-1).astype(np.float64) @ wm
        np.testing.assert_allclose(out.reshape(2, 9, 16), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_channel_direct_kernel(kernel_mode, monkeypatch, dtype):
    """One-channel stride-1 convolutions with up to 16 outputs run the direct kernels in ``numba`` mode
    (forward and weight gradient), and give PyTorch's values either way, also when the kernels are
    switched off or on between forward and backward (backward follows its forward)."""
    from deepbox import kernels

    calls = []
    K = kernels.switch.kernels()
    if K is not None:
        for name in ("conv1ch_forward", "conv1ch_weight_grad"):
            real = getattr(K, name)
            monkeypatch.setattr(K, name, lambda *a, real=real, name=name: (calls.append(name), real(*a)))
    x, w, b = arr(5, 1, 12, 13).astype(dtype), arr(6, 1, 5, 5).astype(dtype), arr(6).astype(dtype)
    # float32: a weight gradient near zero is a sum of 780 products of size ~30 (atol, not rtol)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    g = arr(5, 6, 12, 13).astype(dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    TF.conv2d(tx, tw, tb, padding=2).backward(torch.tensor(g))
    for flip in (False, True):
        dx, dw, db = (deepbox.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(dx, dw, db, padding=2)
        with kernels.switch.compiled((kernel_mode == "numba") != flip):
            y.backward(deepbox.tensor(g))
        np.testing.assert_allclose(y._data, TF.conv2d(tx, tw, tb, padding=2).detach().numpy(), **tol)
        for d, t in ((dx, tx), (dw, tw), (db, tb)):
            np.testing.assert_allclose(d.grad._data, t.grad.numpy(), **tol)
    calls = [name for name, _ in itertools.groupby(calls)]       # one call per thread's chunk
    # backward does what its forward chose, whatever the switch says by then
    if kernel_mode == "numba":
        assert calls == ["conv1ch_forward", "conv1ch_weight_grad"] * 2, calls
    else:
        assert calls == [], calls


def test_workspace_buffers_shared_across_batch_sizes_and_layers():
    """The conv workspace pools buffers by size class: batch sizes that vary from call to call reuse
    the same few buffers, and padded inputs of different layers never share one (their zero borders
    would land on another layer's pixels); every result still equals PyTorch's."""
    from deepbox.kernels.workspace import workspace

    workspace.clear()
    layers = [(16, 20, 20, 8), (8, 18, 22, 16), (16, 20, 20, 4)]     # (C, H, W, O), all with padding 1
    for n in (9, 4, 12, 7):
        for c, h, w, o in layers:
            x, wt = arr(n, c, h, w), arr(o, c, 3, 3)
            dx, dw = deepbox.tensor(x, requires_grad=True), deepbox.tensor(wt, requires_grad=True)
            tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(wt, requires_grad=True)
            yd, yt = F.conv2d(dx, dw, padding=1), TF.conv2d(tx, tw, padding=1)
            g = arr(*yt.shape)
            yd.backward(deepbox.tensor(g))
            yt.backward(torch.tensor(g))
            np.testing.assert_allclose(yd._data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dw.grad._data, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    before = sum(len(b) for b in workspace.pool.values())
    for n in range(13, 29):                      # 16 more batch sizes of the first layer
        F.conv2d(deepbox.tensor(arr(n, 16, 20, 20)), deepbox.tensor(arr(8, 16, 3, 3)), padding=1)
    after = sum(len(b) for b in workspace.pool.values())
    assert after - before <= 4, (before, after)


def test_one_channel_strided_input_and_batch_one():
    """The direct one-channel path copies any input layout into its padded rows: a strided view and a
    batch of one give PyTorch's values and gradients."""
    for x in (arr(3, 1, 24, 15)[:, :, ::2, 1:], arr(1, 1, 6, 6)):
        w, b = arr(4, 1, 3, 3), arr(4)
        dx = deepbox.from_numpy(x).requires_grad_(True)          # keeps the strides
        assert dx._data.strides == x.strides
        dw, db = (deepbox.tensor(a, requires_grad=True) for a in (w, b))
        tx, tw, tb = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b))
        yd, yt = F.conv2d(dx, dw, db, padding=1), TF.conv2d(tx, tw, tb, padding=1)
        g = arr(*yt.shape)
        yd.backward(deepbox.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(yd._data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        for d, t in ((dx, tx), (dw, tw), (db, tb)):
            np.testing.assert_allclose(d.grad._data, t.grad.numpy(), rtol=1e-10, atol=1e-12)

"""Pooling, interpolation and pixel shuffle: values and gradients against PyTorch, plus gradcheck."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as F
from tests.helpers import check_op

rng = np.random.default_rng(1)


def arr(*shape):
    return rng.standard_normal(shape)


def fn(x):
    return F if isinstance(x, deepbox.Tensor) else TF


POOL_GRID = [(k, s, p, d, cm)
             for k, s, p, d, cm in itertools.product([1, 2, 3], [1, 2, 3], [0, 1], [1, 2], [False, True])
             if p <= (d * (k - 1) + 1) // 2]


@pytest.mark.parametrize("k,s,p,d,ceil_mode", POOL_GRID, ids=str)
def test_max_pool2d_grid(k, s, p, d, ceil_mode):
    for shape in [(2, 3, 7, 6), (1, 2, 8, 8)]:
        check_op(lambda x: fn(x).max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True), arr(*shape))


@pytest.mark.parametrize("k,s,p,ceil_mode,cip", [
    (k, s, p, cm, cip)
    for k, s, p, cm, cip in itertools.product([2, 3], [1, 2, 3], [0, 1], [False, True], [True, False])
    if p <= k // 2], ids=str)
def test_avg_pool2d_grid(k, s, p, ceil_mode, cip):
    check_op(lambda x: fn(x).avg_pool2d(x, k, s, p, ceil_mode, cip), arr(2, 3, 7, 6))


def test_avg_pool2d_divisor_override_and_rect_kernels():
    check_op(lambda x: fn(x).avg_pool2d(x, (3, 2), (2, 1), (1, 0), divisor_override=5), arr(2, 2, 7, 6))
    check_op(lambda x: fn(x).max_pool2d(x, (3, 2), (1, 2), (1, 1), (1, 2)), arr(2, 2, 7, 6))


def test_max_pool_ties_follow_pytorch():
    """After ReLU most windows are all zeros: the gradient goes to the first maximum only."""
    x = np.maximum(arr(2, 3, 8, 8), 0)
    x[0, 0, :2, :2] = 1.0
    check_op(lambda x: fn(x).max_pool2d(x, 2), x)
    check_op(lambda x: fn(x).max_pool2d(x, 3, 1, 1), x)


def test_pool_float32_fast_path():
    check_op(lambda x: fn(x).max_pool2d(x.relu(), 2), arr(4, 8, 12, 12), dtype=np.float32)
    check_op(lambda x: fn(x).avg_pool2d(x, 2), arr(4, 8, 12, 13), dtype=np.float32)


def test_pool_after_conv_channels_last():
    """A conv output is a channels-last view; pooling must read and return it correctly."""
    check_op(lambda x, w: fn(x).max_pool2d(fn(x).conv2d(x, w, padding=1), 2), arr(2, 3, 8, 8), arr(4, 3, 3, 3))
    check_op(lambda x, w: fn(x).avg_pool2d(fn(x).conv2d(x, w, padding=1), 3, 2, 1), arr(2, 3, 8, 8), arr(4, 3, 3, 3))


@pytest.mark.parametrize("k,s,p,d,cm", [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)], ids=str)
def test_pool1d(k, s, p, d, cm):
    check_op(lambda x: fn(x).max_pool1d(x, k, s, p, d, cm, True), arr(2, 3, 9))
    check_op(lambda x: fn(x).avg_pool1d(x, k, s, p // 1 if p <= k // 2 else 0, cm), arr(2, 3, 9))


@pytest.mark.parametrize("out", [1, 2, 3, (4, 3), (7, 5), (None, 2)], ids=str)
def test_adaptive_pool2d(out):
    check_op(lambda x: fn(x).adaptive_avg_pool2d(x, out), arr(2, 3, 7, 5))
    check_op(lambda x: fn(x).adaptive_max_pool2d(x, out, True), arr(2, 3, 7, 5))
    check_op(lambda x: fn(x).adaptive_avg_pool2d(x, out), arr(2, 3, 8, 6))


def test_global_avg_pool_gradient_keeps_a_channels_last_layout():
    """A ResNet's head: after a convolution (channels-last activations) and a ReLU, the global average
    pool's gradient comes back in the activations' layout, and ReLU's compiled backward gets a
    gradient it can read flat; values and gradients as PyTorch's."""
    a = rng.standard_normal((4, 16, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1
    xd, xt = deepbox.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    hd = F.relu(F.conv2d(xd, deepbox.tensor(w), padding=1))
    ht = TF.relu(TF.conv2d(xt, torch.tensor(w), padding=1))
    yd, yt = F.adaptive_avg_pool2d(hd, 1), TF.adaptive_avg_pool2d(ht, 1)
    cot = rng.standard_normal((4, 16, 1, 1)).astype(np.float32)
    node = yd.grad_fn
    (g,) = node.backward(node, cot)
    assert g.strides == hd._data.strides        # the gradient in the activations' memory layout
    yd.backward(deepbox.tensor(cot))
    yt.backward(torch.tensor(cot))
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_relu_backward_with_a_gradient_in_another_layout():
    """The compiled ReLU's backward copies a gradient of another memory layout into its output's."""
    a = rng.standard_normal((8, 64, 12, 12)).astype(np.float32)
    x_cl = np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)     # channels-last view
    g = rng.standard_normal(a.shape).astype(np.float32)                         # channels-first gradient
    xd, xt = deepbox.tensor(x_cl, requires_grad=True), torch.tensor(a, requires_grad=True)
    F.relu(xd).backward(deepbox.tensor(g))
    TF.relu(xt).backward(torch.tensor(g))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


def test_adaptive_pool1d_and_unbatched():
    check_op(lambda x: fn(x).adaptive_avg_pool1d(x, 4), arr(2, 3, 9))
    check_op(lambda x: fn(x).adaptive_max_pool1d(x, 4), arr(2, 3, 9))
    check_op(lambda x: fn(x).adaptive_avg_pool2d(x, (2, 3)), arr(3, 7, 7))
    check_op(lambda x: fn(x).max_pool2d(x, 2), arr(3, 7, 7))


INTERP = [
    dict(size=(10, 12), mode="nearest"), dict(size=(7, 4), mode="nearest"), dict(scale_factor=1.7, mode="nearest"),
    dict(scale_factor=0.5, mode="nearest"), dict(size=(9, 11), mode="nearest-exact"),
    dict(size=(9, 11), mode="bilinear", align_corners=False), dict(size=(9, 11), mode="bilinear", align_corners=True),
    dict(scale_factor=2.3, mode="bilinear", align_corners=False), dict(scale_factor=2, mode="bilinear",
                                                                       align_corners=True),
    dict(size=(3, 2), mode="bilinear", align_corners=False), dict(size=(1, 1), mode="bilinear", align_corners=True),
    dict(scale_factor=(2, 3), mode="nearest"),
    dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True, align_corners=False),
]


@pytest.mark.parametrize("kw", INTERP, ids=str)
def test_interpolate_2d(kw):
    check_op(lambda x: fn(x).interpolate(x, **kw), arr(2, 3, 5, 6))


@pytest.mark.parametrize("kw", [dict(size=9, mode="linear", align_corners=False),
                                dict(scale_factor=2, mode="linear", align_corners=True),
                                dict(scale_factor=3, mode="nearest")], ids=str)
def test_interpolate_1d(kw):
    check_op(lambda x: fn(x).interpolate(x, **kw), arr(2, 3, 5))


def test_interpolate_float32():
    check_op(lambda x: fn(x).interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
             arr(2, 3, 5, 6), dtype=np.float32)


def test_pixel_shuffle():
    check_op(lambda x: fn(x).pixel_shuffle(x, 2), arr(2, 12, 3, 4))
    check_op(lambda x: fn(x).pixel_unshuffle(x, 3), arr(2, 2, 6, 9))
    check_op(lambda x: fn(x).pixel_shuffle(x, 2), arr(4, 3, 3))


def test_gradcheck_pooling():
    x = deepbox.tensor(arr(1, 2, 5, 5), requires_grad=True)
    assert deepbox.autograd.gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (x,))
    assert deepbox.autograd.gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (x,))
    assert deepbox.autograd.gradcheck(lambda x: F.interpolate(x, size=(7, 8), mode="bilinear"), (x,))
    assert deepbox.autograd.gradcheck(lambda x: F.adaptive_max_pool2d(x, 3), (x,))


def test_modules_match_torch():
    x = arr(2, 4, 8, 8).astype(np.float32)
    pairs = [
        (torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), deepbox.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), deepbox.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (torch.nn.AdaptiveAvgPool2d((3, 2)), deepbox.nn.AdaptiveAvgPool2d((3, 2))),
        (torch.nn.AdaptiveMaxPool2d(3), deepbox.nn.AdaptiveMaxPool2d(3)),
        (torch.nn.Upsample(scale_factor=2, mode="bilinear"), deepbox.nn.Upsample(scale_factor=2, mode="bilinear")),
        (torch.nn.Upsample(size=(5, 6)), deepbox.nn.Upsample(size=(5, 6))),
        (torch.nn.PixelShuffle(2), deepbox.nn.PixelShuffle(2)),
        (torch.nn.Unfold(3, padding=1), deepbox.nn.Unfold(3, padding=1)),
    ]
    for tm, dm in pairs:
        assert repr(dm) == repr(tm)
        np.testing.assert_allclose(dm(deepbox.tensor(x))._data, tm(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    y = arr(2, 3, 9).astype(np.float32)
    for tm, dm in [(torch.nn.MaxPool1d(3, 2), deepbox.nn.MaxPool1d(3, 2)),
                   (torch.nn.AvgPool1d(3, 2, 1), deepbox.nn.AvgPool1d(3, 2, 1)),
                   (torch.nn.AdaptiveAvgPool1d(4), deepbox.nn.AdaptiveAvgPool1d(4))]:
        assert repr(dm) == repr(tm)
        np.testing.assert_allclose(dm(deepbox.tensor(y))._data, tm(torch.tensor(y)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [
    lambda: F.max_pool2d(deepbox.randn(1, 1, 5, 5), 2, padding=2),       # padding > half kernel
    lambda: F.max_pool2d(deepbox.randn(1, 1, 9, 9), 3, 1, 2, 2),          # > half kernel, < half dilated one
    lambda: F.max_pool2d(deepbox.randn(1, 1, 2, 2), 3),                   # window larger than input
    lambda: F.interpolate(deepbox.randn(1, 1, 4, 4), mode="bicubic", scale_factor=2),
    lambda: F.interpolate(deepbox.randn(1, 1, 4, 4)),                     # neither size nor scale
    lambda: F.pixel_shuffle(deepbox.randn(1, 3, 4, 4), 2),
])
def test_bad_arguments_raise(bad):
    with pytest.raises((ValueError, RuntimeError, NotImplementedError)):
        bad()

"""Max pooling on the compiled kernels and on their NumPy twin, edge case by edge case, against PyTorch.

Every test here runs twice (tests/conv/conftest.py): ``kernel_mode`` is ``"numba"`` or ``"numpy"``.
Each case checks the output, ``return_indices`` (int64, PyTorch's flat ``h*W + w`` positions) and
the input gradient for a random cotangent, for channels-first, channels-last and sliced
(non-contiguous) inputs, including NaN, all ``-inf`` windows and infinite gradients.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as F
from deepbox import kernels

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
LAYOUTS = ("cf", "cl", "slice")


def layout_np(a, layout):
    """``a`` (N, C, H, W) stored channels-first, channels-last, or as a non-contiguous slice of a wider array."""
    if layout == "cf":
        return np.ascontiguousarray(a)
    if layout == "cl":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    n, c, h, w = a.shape
    big = np.full((n, c, h, w + 3), 7.0, dtype=a.dtype)
    big[..., 1:w + 1] = a
    return big[..., 1:w + 1]


def is_channels_last(a):
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


def run_pool(x, grad=None, layout="cf", grad_layout=None, fn="max_pool2d", **kw):
    """Max pooling with indices in deepbox and torch from the same array; returns (deepbox, torch) results."""
    x = layout_np(x, layout) if x.ndim == 4 else x
    t = torch.from_numpy(x.copy() if layout == "cf" else x).requires_grad_(True)
    d = deepbox.from_numpy(x).requires_grad_(True)
    t_out, t_idx = getattr(TF, fn)(t, return_indices=True, **kw)
    d_out, d_idx = getattr(F, fn)(d, return_indices=True, **kw)
    if grad is None:
        grad = np.random.default_rng(3).standard_normal(tuple(t_out.shape)).astype(x.dtype)
    if grad_layout is not None:
        grad = layout_np(grad, grad_layout)
    t_out.backward(torch.from_numpy(np.array(grad)))
    d_out.backward(deepbox.from_numpy(grad))
    return (d_out._data, d_idx._data, d.grad._data), (t_out.detach().numpy(), t_idx.numpy(), t.grad.numpy())


def compare(dres, tres, what=""):
    (do, di, dg), (to, ti, tg) = dres, tres
    tol = TOL[to.dtype.type]
    assert do.dtype == to.dtype and dg.dtype == tg.dtype, f"{what}: dtypes {do.dtype}/{dg.dtype} vs {to.dtype}"
    np.testing.assert_allclose(do, to, err_msg=f"{what}: output", **tol)
    assert di.dtype == np.int64, f"{what}: indices dtype {di.dtype}"
    np.testing.assert_array_equal(di, ti, err_msg=f"{what}: indices")
    np.testing.assert_allclose(dg, tg, err_msg=f"{what}: input gradient", **tol)


rng = np.random.default_rng(7)


def distinct(*shape, dtype=np.float64):
    """Values with no ties (a random permutation), so every window has a unique maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0).astype(dtype)


# ----------------------------------------------------------------------------- geometry grid

GEOMS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=2, stride=1),
    dict(kernel_size=3, stride=3, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, dilation=2),
    dict(kernel_size=3, stride=1, padding=1, dilation=2),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), dilation=(1, 2)),
    dict(kernel_size=(2, 4), stride=(3, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=2, stride=3, ceil_mode=True),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("geom", GEOMS, ids=lambda g: "-".join(f"{k[0]}{v}" for k, v in g.items()))
def test_max_pool2d_geometry(geom, layout):
    for shape in [(2, 3, 7, 6), (1, 4, 9, 8), (1, 1, 5, 5)]:
        for dtype in (np.float64, np.float32):
            compare(*run_pool(distinct(*shape, dtype=dtype), layout=layout, **geom), what=f"{shape} {dtype}")


@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_output_keeps_input_memory_layout(layout):
    """A channels-last conv output stays channels-last through the pool, as in PyTorch."""
    x = layout_np(distinct(2, 5, 8, 8), layout)
    d_out = F.max_pool2d(deepbox.from_numpy(x), 2)._data
    t_out = TF.max_pool2d(torch.from_numpy(x), 2)
    assert is_channels_last(d_out) == t_out.is_contiguous(memory_format=torch.channels_last) \
        == (layout == "cl")


@pytest.mark.parametrize("in_layout,grad_layout", [("cf", "cl"), ("cl", "cf"), ("cf", "slice"), ("cl", "slice")])
@pytest.mark.parametrize("geom", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)], ids=str)
def test_gradient_in_another_layout(geom, in_layout, grad_layout):
    compare(*run_pool(distinct(2, 3, 8, 8), layout=in_layout, grad_layout=grad_layout, **geom))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_large_input_split_over_threads(layout, threads):
    """Big enough for ``kernels.threads.parallel`` to cut the batch into chunks (3 threads: uneven chunks)."""
    old = kernels.threads.num_threads()
    kernels.threads.set_num_threads(threads)
    try:
        for dtype in (np.float32, np.float64):
            x = distinct(5, 16, 24, 20, dtype=dtype)
            compare(*run_pool(x, layout=layout, kernel_size=3, stride=2, padding=1), what=str(dtype))
            compare(*run_pool(x, layout=layout, kernel_size=2), what=str(dtype))
    finally:
        kernels.threads.set_num_threads(old)


def test_kernel_path_is_taken(kernel_mode, monkeypatch):
    """The ``numba`` mode really runs the compiled kernels (split in chunks), the ``numpy`` mode never does."""
    calls = []
    real = kernels.threads.parallel

    def spy(fn, n, *args, **kw):
        chunks = real(fn, n, *args, **kw)
        calls.append((getattr(fn, "__name__", str(fn)), chunks))
        return chunks

    monkeypatch.setattr(kernels.threads, "parallel", spy)
    for geom in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        x = deepbox.randn(4, 8, 32, 32, requires_grad=True)
        F.max_pool2d(x, **geom).sum().backward()
        if kernel_mode == "numba":
            t = min(kernels.threads.num_threads(), 32)
            assert len(calls) == 2 and calls[0][0].startswith("maxpool"), calls
            assert calls[0][1] == t and calls[1] == ("maxpool_backward", t), calls
        else:
            assert calls == []
        calls.clear()
    F.max_pool2d(deepbox.randn(2, 3, 8, 8).half(), 2)        # float16: always the NumPy path
    assert calls == []


def test_batch_one_and_unbatched():
    compare(*run_pool(distinct(1, 6, 9, 7), kernel_size=3, stride=2, padding=1))
    compare(*run_pool(distinct(1, 6, 9, 7), layout="cl", kernel_size=2, ceil_mode=True))
    # unbatched (C, H, W) and 1-D (N, C, L)
    for fn, shape in [("max_pool2d", (3, 7, 7)), ("max_pool1d", (2, 3, 11)), ("max_pool1d", (3, 11))]:
        compare(*run_pool(distinct(*shape), fn=fn, kernel_size=3, stride=2, padding=1, ceil_mode=True), what=fn)


@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_ties_after_relu_first_maximum(layout):
    """After a ReLU most windows are all zeros: the gradient and the index go to the first maximum."""
    x = np.maximum(np.random.default_rng(0).standard_normal((2, 4, 9, 9)), 0)
    x[0, 0, :3, :3] = 2.0                                     # a tie at a positive value too
    for geom in [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=3, stride=2,
                                                                                     dilation=2, ceil_mode=True)]:
        compare(*run_pool(x, layout=layout, **geom), what=str(geom))
        compare(*run_pool(x.astype(np.float32), layout=layout, **geom), what=f"float32 {geom}")


# ----------------------------------------------------------------------------- NaN and infinities

def nan_input(layout):
    x = np.arange(2 * 2 * 6 * 6, dtype=np.float64).reshape(2, 2, 6, 6)
    x[0, 0, 0, 1] = np.nan                  # one NaN in the first 2x2 window (not its first tap)
    x[0, 1, 2, 2] = x[0, 1, 3, 3] = np.nan  # two NaNs in one window: PyTorch takes the last
    x[1, 0, 5, 5] = np.nan                  # a NaN at a window's last tap
    return x


@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_nan_in_window_output(layout):
    """The NaN propagates to the window's output (both paths)."""
    for geom in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)]:
        (do, _, _), (to, _, _) = run_pool(nan_input(layout), layout=layout, **geom)
        np.testing.assert_array_equal(np.isnan(do), np.isnan(to))
        np.testing.assert_allclose(do, to)


@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_nan_in_window_index_and_gradient(layout, kernel_mode):
    """PyTorch's index and gradient go to the NaN (the last one when a window holds several)."""
    for geom in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            compare(*run_pool(nan_input(layout), layout=layout, **geom), what=str(geom))


@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_all_minus_inf_window_with_padding(layout, kernel_mode):
    """A window of -inf only: PyTorch's index (and gradient) is its first position inside the input."""
    x = np.full((1, 2, 5, 5), -np.inf)
    x[0, 1, 3:, 3:] = 1.0
    compare(*run_pool(x, layout=layout, kernel_size=3, stride=2, padding=1))


@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_infinite_upstream_gradient_stays_at_the_maximum(layout, kernel_mode):
    """An inf in the incoming gradient reaches only the window's maximum; the other inputs get exactly 0."""
    x = distinct(1, 2, 6, 6)
    for geom in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)]:
        g = np.ones(TF.max_pool2d(torch.from_numpy(x), **geom).shape)
        g[0, 0, 0, 0] = np.inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            compare(*run_pool(x, grad=g, layout=layout, **geom), what=str(geom))


def test_minus_inf_values_with_finite_maximum():
    """-inf inputs next to padding: the finite maximum wins, indices stay inside the input."""
    x = distinct(2, 3, 6, 6)
    x[:, :, ::2, ::2] = -np.inf
    for layout in ("cf", "cl"):
        compare(*run_pool(x, layout=layout, kernel_size=3, stride=2, padding=1, ceil_mode=True), what=layout)


# ----------------------------------------------------------------------------- gradcheck and a small net

@pytest.mark.parametrize("geom", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                  dict(kernel_size=(2, 3), stride=1, padding=(1, 1), dilation=(2, 1))], ids=str)
def test_gradcheck_float64(geom):
    for layout in ("cf", "cl"):
        x = deepbox.from_numpy(layout_np(distinct(2, 3, 7, 6), layout)).requires_grad_(True)
        assert deepbox.autograd.gradcheck(lambda x: F.max_pool2d(x, **geom), (x,))


def test_conv_bn_relu_pool_block_matches_torch():
    """A LeNet-style block: the conv output's layout flows through batch norm, ReLU and the pool."""
    x = np.random.default_rng(1).standard_normal((4, 3, 12, 12)).astype(np.float32)
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
                             torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 5, 3), torch.nn.BatchNorm2d(5),
                             torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True))
    dm = deepbox.nn.Sequential(deepbox.nn.Conv2d(3, 6, 3, padding=1), deepbox.nn.BatchNorm2d(6), deepbox.nn.ReLU(),
                               deepbox.nn.MaxPool2d(2), deepbox.nn.Conv2d(6, 5, 3), deepbox.nn.BatchNorm2d(5),
                               deepbox.nn.ReLU(), deepbox.nn.MaxPool2d(3, 2, 1, ceil_mode=True))
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    xt, xd = torch.tensor(x, requires_grad=True), deepbox.tensor(x, requires_grad=True)
    for step in range(2):
        yt, yd = tm(xt), dm(xd)
        np.testing.assert_allclose(yd._data, yt.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=f"step {step}")
        g = np.random.default_rng(step).standard_normal(tuple(yt.shape)).astype(np.float32)
        yt.backward(torch.tensor(g))
        yd.backward(deepbox.tensor(g))
    np.testing.assert_allclose(xd.grad._data, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, pt), (_, pd) in zip(tm.named_parameters(), dm.named_parameters()):
        np.testing.assert_allclose(pd.grad._data, pt.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    for (name, bt), (_, bd) in zip(tm.named_buffers(), dm.named_buffers()):
        np.testing.assert_allclose(bd._data, bt.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_indices_feed_max_unpool_like_torch():
    """The int64 indices are usable where PyTorch's are: gather the outputs back from the flat input."""
    for layout, geom in itertools.product(("cf", "cl"), [dict(kernel_size=2), dict(kernel_size=3, stride=2,
                                                                                   padding=1, dilation=1)]):
        x = layout_np(distinct(2, 3, 7, 7), layout)
        out, idx = F.max_pool2d(deepbox.from_numpy(x), return_indices=True, **geom)
        flat = np.ascontiguousarray(x).reshape(2, 3, -1)
        gathered = np.take_along_axis(flat, idx._data.reshape(2, 3, -1), axis=2).reshape(out.shape)
        np.testing.assert_array_equal(gathered, out._data)

"""Batch norm on the compiled kernels and on their NumPy twin, against PyTorch.

Each test takes ``kernel_mode`` (tests/conftest.py) and so runs on both paths. A case builds
the same module in deepbox and torch (random affine parameters), feeds the same input stored
channels-first, channels-last or as a non-contiguous slice, backpropagates the same cotangent,
and compares the output, the input/weight/bias gradients and the running statistics
(``num_batches_tracked`` included) after every step.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from deepbox import kernels

MODULES = {"bn1d-2d": ("BatchNorm1d", (16, 5)), "bn1d-3d": ("BatchNorm1d", (6, 5, 7)),
           "bn2d": ("BatchNorm2d", (4, 5, 6, 7))}
TRACK = {"untracked": dict(track_running_stats=False), "momentum": dict(momentum=0.1),
         "cumulative": dict(momentum=None)}
DTYPES = {"float32": np.float32, "float64": np.float64}


def layout_np(a, layout):
    """``a`` (N, C, ...) stored channels-first, channels-last, or as a non-contiguous slice."""
    if layout == "cf":
        return np.ascontiguousarray(a)
    if layout == "cl":
        if a.ndim == 2:
            return np.asfortranarray(a)
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
    if a.ndim == 2:
        big = np.full((2 * a.shape[0], a.shape[1]), 9.0, dtype=a.dtype)
        big[::2] = a
        return big[::2]
    big = np.full(a.shape[:-1] + (a.shape[-1] + 3,), 9.0, dtype=a.dtype)
    big[..., 1:-2] = a
    return big[..., 1:-2]


def close(actual, expected, what):
    a = actual._data if isinstance(actual, deepbox.Tensor) else np.asarray(actual)
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != {e.dtype}"
    if e.dtype.kind != "f":
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    scale = max(1.0, float(np.abs(e).max()))
    rtol, atol = (1e-4, 2e-5) if e.dtype == np.float32 else (1e-9, 1e-11)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=what)


def make_pair(name, c, dtype, affine=True, **kw):
    """The same batch-norm module in torch and deepbox, with random weight and bias."""
    tm = getattr(torch.nn, name)(c, affine=affine, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, **kw)
    dm = getattr(deepbox.nn, name)(c, affine=affine, dtype=getattr(deepbox, np.dtype(dtype).name), **kw)
    if affine:
        r = np.random.default_rng(11)
        with torch.no_grad():
            tm.weight.copy_(torch.from_numpy(r.uniform(0.5, 1.5, c).astype(dtype)))
            tm.bias.copy_(torch.from_numpy(r.standard_normal(c).astype(dtype)))
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return tm, dm


def data(shape, dtype, seed, offset=0.0):
    r = np.random.default_rng(seed)
    # per-channel means and spreads that differ, so a mixed-up channel shows
    c = shape[1]
    loc = r.uniform(-2, 2, c).reshape((1, c) + (1,) * (len(shape) - 2))
    spread = r.uniform(0.5, 3, c).reshape(loc.shape)
    return (offset + loc + spread * r.standard_normal(shape)).astype(dtype)


def step(tm, dm, x, g, what, x_grad=True):
    """One forward and backward in both; compare output, gradients and buffers."""
    xt = torch.from_numpy(x).requires_grad_(x_grad)
    xd = deepbox.from_numpy(x).requires_grad_(x_grad)
    yt, yd = tm(xt), dm(xd)
    close(yd, yt, f"{what}: output")
    yt.backward(torch.from_numpy(g))
    yd.backward(deepbox.from_numpy(g))
    if x_grad:
        close(xd.grad, xt.grad, f"{what}: input gradient")
    for (n, pt), (_, pd) in zip(tm.named_parameters(), dm.named_parameters()):
        if pt.grad is None:
            assert pd.grad is None, f"{what}: {n} has a gradient, torch's none"
        else:
            close(pd.grad, pt.grad, f"{what}: {n} gradient")
        pt.grad, pd.grad = None, None
    for (n, bt), (_, bd) in zip(tm.named_buffers(), dm.named_buffers()):
        close(bd, bt, f"{what}: {n}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["cf", "cl", "slice"])
@pytest.mark.parametrize("track", TRACK)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("module", MODULES)
def test_batchnorm_matches_torch(kernel_mode, module, training, affine, track, layout, dtype):
    name, shape = MODULES[module]
    dt = DTYPES[dtype]
    tm, dm = make_pair(name, shape[1], dt, affine=affine, **TRACK[track])
    if not training:   # running statistics from one training batch first, then evaluate
        x0 = layout_np(data(shape, dt, 5), layout)
        with torch.no_grad():
            tm(torch.from_numpy(x0))
        with deepbox.no_grad():
            dm(deepbox.from_numpy(x0))
        tm.eval()
        dm.eval()
    for k in range(2):
        x = layout_np(data(shape, dt, k), layout)
        g = layout_np(np.random.default_rng(100 + k).standard_normal(shape).astype(dt), layout)
        step(tm, dm, x, g, f"step {k}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("in_layout,grad_layout", [("cf", "cl"), ("cl", "cf"), ("cf", "slice"), ("cl", "slice")])
@pytest.mark.parametrize("module", ["bn1d-2d", "bn1d-3d", "bn2d"])
def test_gradient_in_another_layout(kernel_mode, module, in_layout, grad_layout, training, dtype):
    name, shape = MODULES[module]
    dt = DTYPES[dtype]
    tm, dm = make_pair(name, shape[1], dt)
    tm.train(training)
    dm.train(training)
    for k in range(2):
        x = layout_np(data(shape, dt, k), in_layout)
        g = layout_np(np.random.default_rng(100 + k).standard_normal(shape).astype(dt), grad_layout)
        step(tm, dm, x, g, f"step {k}")


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_frozen_parts(kernel_mode, layout, training):
    """An input that needs no gradient (a first layer), and frozen affine parameters (fine-tuning)."""
    shape = (4, 5, 6, 7)
    for dt in (np.float32, np.float64):
        tm, dm = make_pair("BatchNorm2d", 5, dt)
        tm.train(training)
        dm.train(training)
        x = layout_np(data(shape, dt, 1), layout)
        g = layout_np(np.random.default_rng(2).standard_normal(shape).astype(dt), layout)
        step(tm, dm, x, g, "input without gradient", x_grad=False)
        for p in list(tm.parameters()) + list(dm.parameters()):
            p.requires_grad_(False)
        step(tm, dm, x, g, "frozen weight and bias")


@pytest.mark.parametrize("shape", [(2, 1, 3, 3), (3, 4, 1, 1), (2, 3, 1, 5), (7, 1)], ids=str)
def test_degenerate_shapes(kernel_mode, shape):
    """One channel, 1x1 maps (where channels-first and channels-last memory coincide), and tiny batches."""
    name = "BatchNorm1d" if len(shape) == 2 else "BatchNorm2d"
    for layout in ("cf", "cl"):
        for dt in (np.float32, np.float64):
            tm, dm = make_pair(name, shape[1], dt)
            for k in range(2):
                x = layout_np(data(shape, dt, k), layout)
                g = layout_np(np.random.default_rng(k).standard_normal(shape).astype(dt), layout)
                step(tm, dm, x, g, f"{layout} {dt.__name__} step {k}")


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layout", ["cf", "cl"])
def test_large_input_split_over_threads(kernel_mode, layout, threads):
    """Big enough for ``kernels.threads.parallel`` to cut the work in chunks; 3 threads give uneven chunks."""
    old = kernels.threads.num_threads()
    kernels.threads.set_num_threads(threads)
    try:
        shape = (5, 16, 24, 20)
        for dt in (np.float32, np.float64):
            tm, dm = make_pair("BatchNorm2d", 16, dt)
            for k in range(2):
                x = layout_np(data(shape, dt, k), layout)
                g = layout_np(np.random.default_rng(k).standard_normal(shape).astype(dt), layout)
                step(tm, dm, x, g, f"{dt.__name__} step {k}")
            tm.eval()
            dm.eval()
            step(tm, dm, x, g, f"{dt.__name__} eval")
    finally:
        kernels.threads.set_num_threads(old)


def test_kernel_path_is_taken(kernel_mode, monkeypatch):
    """``numba`` mode runs the compiled kernels for kernel layouts only; ``numpy`` mode never does."""
    names = []
    real = kernels.threads.parallel

    def spy(fn, n, *args, **kw):
        names.append(getattr(fn, "__name__", str(fn)))
        return real(fn, n, *args, **kw)

    monkeypatch.setattr(kernels.threads, "parallel", spy)
    expect = {"cf": ["sums_planes", "affine_planes", "sums_planes", "affine2_planes"],
              "cl": ["sums_rows", "affine_rows", "sums_rows", "affine2_rows"], "slice": []}
    for layout, names_expected in expect.items():
        names.clear()
        x = deepbox.from_numpy(layout_np(data((4, 5, 6, 7), np.float32, 0), layout)).requires_grad_(True)
        deepbox.nn.BatchNorm2d(5)(x).square().sum().backward()
        assert names == (names_expected if kernel_mode == "numba" else []), layout


@pytest.mark.parametrize("offset", [1e2, 1e4])
def test_float64_large_mean_small_spread(kernel_mode, offset):
    """Data far from zero relative to its spread keeps float64 accuracy (PyTorch subtracts the mean first)."""
    shape = (8, 4, 6, 6)
    tm, dm = make_pair("BatchNorm2d", 4, np.float64)
    x = data(shape, np.float64, 0, offset=offset)
    g = np.random.default_rng(1).standard_normal(shape)
    step(tm, dm, x, g, f"offset {offset}")


def test_float32_image_range(kernel_mode):
    """Unnormalised 0..255 pixels in float32."""
    shape = (8, 3, 10, 10)
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for layout in ("cf", "cl"):
        tm, dm = make_pair("BatchNorm2d", 3, np.float32)
        step(tm, dm, layout_np(x, layout), layout_np(g, layout), layout)


@pytest.mark.parametrize("c, offset", [(16, 0.0), (32, 50.0), (48, -3.0)])
def test_batch_norm_channels_last_sixteens(kernel_mode, monkeypatch, c, offset):
    """float32 channels-last batch norm with channels in sixteens sums in float32 vector blocks
    (``sums_rows16``, numba mode); output, running statistics and every gradient agree with PyTorch in
    float64, also for data far from zero (the shift) with a small spread."""
    calls = []
    K = kernels.switch.kernels()
    if K is not None:
        real = K.sums_rows16
        monkeypatch.setattr(K, "sums_rows16", lambda *a: (calls.append(a[2] - a[1]), real(*a)))
    r = np.random.default_rng(c)
    x = (r.standard_normal((6, 7, 5, c)) * 0.5 + offset).transpose(0, 3, 1, 2)      # channels-last NCHW view
    w, b, g = r.standard_normal(c), r.standard_normal(c), r.standard_normal((6, 7, 5, c)).transpose(0, 3, 1, 2)
    tx, tw, tb = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b))
    trm, trv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.1)
    ty.backward(torch.tensor(np.ascontiguousarray(g)))
    dx = deepbox.from_numpy(x.astype(np.float32)).requires_grad_(True)
    dw, db = (deepbox.tensor(a.astype(np.float32), requires_grad=True) for a in (w, b))
    drm, drv = deepbox.zeros(c), deepbox.ones(c)
    dy = deepbox.nn.functional.batch_norm(dx, drm, drv, dw, db, training=True, momentum=0.1)
    dy.backward(deepbox.from_numpy(g.astype(np.float32)))
    tol = dict(rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dy._data, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(drm._data, trm.numpy(), **tol)
    np.testing.assert_allclose(drv._data, trv.numpy(), **tol)
    for d, t in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(d.grad._data, t.grad.numpy(), **tol)
    # forward and backward each sum every row once
    assert sum(calls) == (2 * 6 * 7 * 5 if kernel_mode == "numba" else 0), calls

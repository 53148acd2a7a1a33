"""Device and precision stand-ins: deepbox answers as PyTorch's CPU-only build does, and GradScaler's
loss scaling follows torch.amp.GradScaler step by step (scale, skipped steps, growth, backoff)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import deepbox


def test_accelerator_answers_none():
    for m in (deepbox, torch):
        assert m.accelerator.is_available() is False
        assert m.accelerator.current_accelerator() is None
        assert m.accelerator.device_count() == 0
        for name in ("current_device_index", "synchronize", "memory_allocated", "empty_cache"):
            with pytest.raises(RuntimeError):
                getattr(m.accelerator, name)()


def test_cuda_answers_as_a_cpu_only_build():
    for m in (deepbox, torch):
        assert m.cuda.is_available() is False and m.cuda.device_count() == 0
        assert m.cuda.memory_allocated() == 0 and m.cuda.max_memory_allocated() == 0
        m.cuda.empty_cache()
        m.cuda.manual_seed_all(0)
        for name in ("current_device", "synchronize"):
            with pytest.raises(AssertionError):
                getattr(m.cuda, name)()
    with pytest.raises(AssertionError, match="CPU only"):
        deepbox.cuda.set_device(0)


def test_default_device():
    assert str(deepbox.get_default_device()) == str(torch.get_default_device()) == "cpu"
    deepbox.set_default_device("cpu")
    deepbox.set_default_device(None)
    with pytest.raises(RuntimeError, match="CPU only"):
        deepbox.set_default_device("cuda")
    assert str(deepbox.get_default_device()) == "cpu"


def test_autocast_is_accepted_and_computes_in_the_inputs_dtype():
    x = deepbox.randn(4, 3)
    w = deepbox.randn(3, 2)
    with deepbox.autocast("cpu", dtype=deepbox.float16):
        y = x @ w
    assert y.dtype == deepbox.float32

    @deepbox.amp.autocast("cpu")
    def f(a):
        return a * 2

    assert f(x).dtype == deepbox.float32
    with pytest.warns(UserWarning, match="CPU only"):
        with deepbox.autocast("cuda"):
            pass
    with pytest.warns(UserWarning):
        with torch.autocast("cuda"):
            pass
    assert deepbox.amp.is_autocast_available("cpu")


def _grads(step, n):
    g = np.random.default_rng(step).normal(size=n)
    if step in (3, 4, 9):  # overflowed gradients: the step must be skipped and the scale backed off
        g[1] = np.inf if step != 4 else np.nan
    return g


@pytest.mark.parametrize("unscale_first", [False, True])
def test_grad_scaler_follows_torch(unscale_first):
    kw = dict(init_scale=8.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    dp = deepbox.nn.Parameter(deepbox.tensor(np.ones(3)))
    tp = torch.nn.Parameter(torch.tensor(np.ones(3)))
    dopt, topt = deepbox.optim.SGD([dp], lr=0.1, momentum=0.5), torch.optim.SGD([tp], lr=0.1, momentum=0.5)
    ds, ts = deepbox.amp.GradScaler("cpu", **kw), torch.amp.GradScaler("cpu", **kw)
    for step in range(12):
        g = _grads(step, 3)
        # the loss g . p, scaled: its gradient is scale * g
        ds.scale((dp * deepbox.tensor(g)).sum()).backward()
        ts.scale((tp * torch.tensor(g)).sum()).backward()
        if unscale_first:
            ds.unscale_(dopt)
            ts.unscale_(topt)
            np.testing.assert_allclose(dp.grad.numpy(), tp.grad.numpy())
        ds.step(dopt)
        ts.step(topt)
        ds.update()
        ts.update()
        dopt.zero_grad()
        topt.zero_grad()
        assert ds.get_scale() == ts.get_scale(), step
        np.testing.assert_allclose(dp.detach().numpy(), tp.detach().numpy(), rtol=1e-12, err_msg=f"step {step}")
    assert ds.state_dict() == {k: (float(v) if k != "_growth_tracker" and k != "growth_interval" else v)
                               for k, v in ts.state_dict().items()}


def test_grad_scaler_misuse_and_disabled():
    p = deepbox.nn.Parameter(deepbox.ones(2))
    opt = deepbox.optim.SGD([p], lr=0.1)
    s = deepbox.amp.GradScaler("cpu")
    s.scale(p.sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.step(opt)
    s.update()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        off = deepbox.amp.GradScaler()  # device "cuda": disabled, as in PyTorch without CUDA
        assert any("CPU only" in str(x.message) for x in w)
    assert not off.is_enabled() and off.get_scale() == 1.0 and off.state_dict() == {}
    loss = p.sum()
    assert off.scale(loss) is loss
    with pytest.raises(ValueError, match="growth factor"):
        deepbox.amp.GradScaler("cpu", growth_factor=0.5)

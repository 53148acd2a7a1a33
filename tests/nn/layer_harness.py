"""One harness for every layer: the deepbox layer against its PyTorch twin.

``check_layer(make_deepbox, make_torch, inputs)`` checks, for one layer configuration:

- the output shape, the parameter count and the ``state_dict`` keys (and their shapes) equal PyTorch's;
- with PyTorch's weights copied in (``load_state_dict`` of arrays), the outputs, the gradients with
  respect to every floating input and every parameter, and the buffers after the forward pass
  (running statistics) equal PyTorch's, in train mode and in eval mode;
- one SGD step on a squared-error loss lowers that loss;
- a ``state_dict`` round trip into a freshly initialised layer reproduces the outputs exactly.

Stochastic layers (dropout) pass ``stochastic=True``: train-mode values are then not compared with
PyTorch (the random streams differ); eval mode still is.
"""
from __future__ import annotations

import numpy as np
import torch

import deepbox
from tests.helpers import assert_close, copy_torch_weights

TOLS = {np.float64: dict(rtol=1e-6, atol=1e-8), np.float32: dict(rtol=2e-4, atol=2e-5)}


def _to_pair(x, dtype):
    """A deepbox tensor and a torch tensor with the same values; floats become differentiable."""
    if isinstance(x, np.ndarray):
        arr = x.astype(dtype) if x.dtype.kind == "f" else x
        d = deepbox.tensor(arr)
        t = torch.tensor(arr)
        if arr.dtype.kind == "f":
            d.requires_grad_(True)
            t.requires_grad_(True)
        return d, t
    return x, x


def _run(dm, tm, inputs, dtype, rng_seed=0, grad=True):
    d_in, t_in = zip(*[_to_pair(x, dtype) for x in inputs])
    d_out = dm(*d_in)
    t_out = tm(*t_in)
    if not grad:
        return d_in, t_in, d_out, t_out
    d_outs = d_out if isinstance(d_out, tuple) else (d_out,)
    t_outs = t_out if isinstance(t_out, tuple) else (t_out,)
    rng = np.random.default_rng(rng_seed)
    pairs = [(a, b) for a, b in zip(d_outs, t_outs) if isinstance(b, torch.Tensor) and b.requires_grad]
    if pairs:
        cots = [rng.standard_normal(tuple(b.shape)).astype(dtype) for _, b in pairs]
        deepbox.autograd.backward([a for a, _ in pairs], [deepbox.tensor(c) for c in cots])
        torch.autograd.backward([b for _, b in pairs], [torch.tensor(c) for c in cots])
    return d_in, t_in, d_out, t_out


def _compare_outputs(d_out, t_out, tol, what):
    d_outs = d_out if isinstance(d_out, tuple) else (d_out,)
    t_outs = t_out if isinstance(t_out, tuple) else (t_out,)
    assert len(d_outs) == len(t_outs), f"{what}: {len(d_outs)} outputs, PyTorch gives {len(t_outs)}"
    for k, (a, b) in enumerate(zip(d_outs, t_outs)):
        assert tuple(a.shape) == tuple(b.shape), f"{what}: output {k} shape {tuple(a.shape)} != {tuple(b.shape)}"
        assert_close(a, b, what=f"{what}: output {k}", **tol)


def check_layer(make_deepbox, make_torch, inputs, *, dtype=np.float64, stochastic=False, modes=("train", "eval"),
                tol=None, step=True, grad=True):
    """Check one layer configuration against PyTorch; see the module docstring."""
    tol = tol or TOLS[dtype]
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    deepbox_dtype = deepbox.float64 if dtype == np.float64 else deepbox.float32

    tm = make_torch().to(torch_dtype)
    dm = make_deepbox().to(deepbox_dtype)

    # structure: parameter count, state_dict keys and shapes, printed form
    t_sd, d_sd = tm.state_dict(), dm.state_dict()
    assert list(d_sd.keys()) == list(t_sd.keys()), f"state_dict keys {list(d_sd)} != PyTorch's {list(t_sd)}"
    for k in t_sd:
        ds, ts = tuple(d_sd[k].shape), tuple(t_sd[k].shape)
        assert ds == ts, f"{k}: shape {ds} != PyTorch's {ts}"
    n_d = sum(p.numel() for p in dm.parameters())
    n_t = sum(p.numel() for p in tm.parameters())
    assert n_d == n_t, f"parameter count {n_d} != PyTorch's {n_t}"
    assert [n for n, _ in dm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert repr(dm) == repr(tm), f"print(model) differs:\n{dm!r}\nvs PyTorch\n{tm!r}"

    copy_torch_weights(tm, dm)
    for mode in modes:
        tm.train(mode == "train")
        dm.train(mode == "train")
        for p in dm.parameters():
            p.grad = None
        tm.zero_grad()
        d_in, t_in, d_out, t_out = _run(dm, tm, inputs, dtype, grad=grad)
        if stochastic and mode == "train":
            d_outs = d_out if isinstance(d_out, tuple) else (d_out,)
            t_outs = t_out if isinstance(t_out, tuple) else (t_out,)
            assert [tuple(a.shape) for a in d_outs] == [tuple(b.shape) for b in t_outs]
            continue
        _compare_outputs(d_out, t_out, tol, f"{mode} mode")
        if grad:
            for i, (d, t) in enumerate(zip(d_in, t_in)):
                if isinstance(t, torch.Tensor) and t.requires_grad and t.grad is not None:
                    assert d.grad is not None, f"{mode}: input {i} has no gradient"
                    assert_close(d.grad, t.grad, what=f"{mode}: grad of input {i}", **tol)
            t_params = dict(tm.named_parameters())
            for name, p in dm.named_parameters():
                tp = t_params[name]
                if tp.grad is None:
                    assert p.grad is None or not np.any(p.grad._data), f"{mode}: {name} has a gradient, PyTorch none"
                    continue
                assert p.grad is not None, f"{mode}: parameter {name} has no gradient"
                assert_close(p.grad, tp.grad, what=f"{mode}: grad of {name}", **tol)
        t_bufs = dict(tm.named_buffers())
        for name, b in dm.named_buffers():
            assert_close(b, t_bufs[name], what=f"{mode}: buffer {name} after forward", **tol)

    if step and any(True for _ in dm.parameters()):
        _check_step_lowers_loss(make_deepbox, inputs, dtype, deepbox_dtype)
    _check_state_dict_round_trip(make_deepbox, dm, inputs, dtype, deepbox_dtype)
    return dm, tm


def _loss(out, target):
    outs = out if isinstance(out, tuple) else (out,)
    return ((outs[0] - target) ** 2).mean()


def _check_step_lowers_loss(make_deepbox, inputs, dtype, deepbox_dtype):
    dm = make_deepbox().to(deepbox_dtype)
    dm.eval()  # deterministic: the same function before and after the step
    d_in = [_to_pair(x, dtype)[0] for x in inputs]
    d_in = [x.detach() if isinstance(x, deepbox.Tensor) else x for x in d_in]
    with deepbox.no_grad():
        out = dm(*d_in)
    first = out[0] if isinstance(out, tuple) else out
    target = deepbox.tensor(np.random.default_rng(1).standard_normal(tuple(first.shape)).astype(dtype))
    loss0 = _loss(dm(*d_in), target)
    loss0.backward()
    with deepbox.no_grad():
        for p in dm.parameters():
            if p.grad is not None:
                p.sub_(p.grad * 1e-2)
        loss1 = _loss(dm(*d_in), target)
    assert float(loss1) < float(loss0), f"one SGD step did not lower the loss ({float(loss0)} -> {float(loss1)})"


def _check_state_dict_round_trip(make_deepbox, dm, inputs, dtype, deepbox_dtype):
    dm.eval()
    fresh = make_deepbox().to(deepbox_dtype)
    fresh.eval()
    sd = dm.state_dict()
    for k, v in sd.items():  # detached views of the module's own arrays
        src = dict(dm.named_parameters()).get(k)
        if src is not None:
            assert not v.requires_grad and np.shares_memory(v._data, src._data), f"{k} is not a detached view"
    res = fresh.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    d_in = [_to_pair(x, dtype)[0] for x in inputs]
    with deepbox.no_grad():
        a, b = dm(*d_in), fresh(*d_in)
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x._data, y._data, err_msg="outputs differ after a state_dict round trip")

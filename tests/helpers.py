"""Shared test helpers: run the same computation in deepbox and PyTorch and compare values and gradients."""
from __future__ import annotations

import numpy as np
import torch

import deepbox

TOL = {np.float64: dict(rtol=1e-7, atol=1e-9), np.float32: dict(rtol=1e-4, atol=1e-5)}


def to_torch(x, requires_grad=None):
    """A torch tensor with the same values (and requires_grad) as a deepbox tensor or array."""
    if isinstance(x, deepbox.Tensor):
        t = torch.from_numpy(np.array(x._data, copy=True))
        rg = x.requires_grad if requires_grad is None else requires_grad
        return t.requires_grad_(rg) if t.is_floating_point() else t
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x.copy())
    return x


def from_torch(t, requires_grad=None):
    """A deepbox tensor with the same values as a torch tensor."""
    arr = t.detach().numpy().copy()
    out = deepbox.from_numpy(arr)
    rg = t.requires_grad if requires_grad is None else requires_grad
    if rg and out.is_floating_point():
        out.requires_grad_(True)
    return out


def copy_torch_weights(torch_module, deepbox_module, strict=True):
    """Load a torch module's state_dict (as arrays) into the same-named deepbox module."""
    sd = {k: v.detach().numpy().copy() for k, v in torch_module.state_dict().items()}
    return deepbox_module.load_state_dict(sd, strict=strict)


def _as_np(x):
    if isinstance(x, deepbox.Tensor):
        return x._data
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(actual, expected, rtol=None, atol=None, what="value"):
    a, e = _as_np(actual), _as_np(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    if e.dtype.kind == "f":
        tol = TOL.get(e.dtype.type, TOL[np.float32])
        np.testing.assert_allclose(a, e, rtol=rtol if rtol is not None else tol["rtol"],
                                   atol=atol if atol is not None else tol["atol"], err_msg=what)
    else:
        np.testing.assert_array_equal(a, e, err_msg=what)


def check_op(fn, *inputs, torch_fn=None, dtype=np.float64, rtol=None, atol=None, grad=True, seed=0):
    """Run ``fn`` on deepbox tensors and on torch tensors built from the same arrays; compare value and grads.

    ``inputs`` are NumPy arrays (floats become differentiable) or other constants passed as they are.
    ``fn`` receives tensors of the framework it runs in (so ``lambda x, y: (x * y).sum(1)`` works for both),
    unless ``torch_fn`` gives the torch version separately. Gradients are checked with a random cotangent.
    """
    torch_fn = torch_fn or fn
    d_in, t_in = [], []
    for x in inputs:
        if isinstance(x, np.ndarray):
            arr = x.astype(dtype) if x.dtype.kind == "f" else x
            d = deepbox.tensor(arr)
            t = torch.tensor(arr)
            if grad and arr.dtype.kind == "f":
                d.requires_grad_(True)
                t.requires_grad_(True)
            d_in.append(d)
            t_in.append(t)
        else:
            d_in.append(x)
            t_in.append(x)
    d_out = fn(*d_in)
    t_out = torch_fn(*t_in)
    d_outs = d_out if isinstance(d_out, (tuple, list)) else (d_out,)
    t_outs = t_out if isinstance(t_out, (tuple, list)) else (t_out,)
    assert len(d_outs) == len(t_outs)
    for k, (a, b) in enumerate(zip(d_outs, t_outs)):
        assert a.dtype.name == str(b.dtype).replace("torch.", ""), f"output {k} dtype {a.dtype} != {b.dtype}"
        assert_close(a, b, rtol, atol, what=f"output {k}")
    if not grad:
        return d_out
    pairs = [(a, b) for a, b in zip(d_outs, t_outs) if isinstance(b, torch.Tensor) and b.requires_grad]
    if not pairs:
        return d_out
    rng = np.random.default_rng(seed)
    cots = [rng.standard_normal(b.shape).astype(_as_np(b).dtype) for _, b in pairs]
    deepbox.autograd.backward([a for a, _ in pairs], [deepbox.tensor(c) for c in cots])
    torch.autograd.backward([b for _, b in pairs], [torch.tensor(c) for c in cots])
    for i, (d, t) in enumerate(zip(d_in, t_in)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if t.grad is None:
                assert d.grad is None or not np.any(d.grad._data), f"input {i}: deepbox has a gradient, torch none"
                continue
            assert d.grad is not None, f"input {i}: torch has a gradient, deepbox none"
            assert d.grad.dtype == d.dtype, f"input {i}: grad dtype {d.grad.dtype} != {d.dtype}"
            assert_close(d.grad, t.grad, rtol, atol, what=f"grad of input {i}")
    return d_out


def require_kernels():
    """Fail (never skip) when deepbox's compiled kernels are not there: numba is in the ``test`` extra,
    so a missing install must not pass as a silent rerun of the NumPy path."""
    import pytest

    from deepbox import kernels

    try:
        import numba  # noqa: F401
        missing = None
    except ImportError as e:
        missing = str(e)
    if missing is not None:
        pytest.fail(f"numba is not importable ({missing}); it is part of the test extra: pip install -e '.[test]'",
                    pytrace=False)
    if not kernels.switch.available():
        pytest.fail("numba is installed but deepbox's compiled kernels did not load (is DEEPBOX_NUMBA=0 set, "
                    "or does a deepbox/kernels/_numba_*.py module fail to import?)", pytrace=False)

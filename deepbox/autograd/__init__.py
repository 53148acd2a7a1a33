"""Reverse-mode automatic differentiation: ``backward``, ``grad``, grad modes and ``gradcheck``.

deepbox computes first-order gradients: backward functions work on raw arrays
and build no graph of their own, so gradients of gradients (``create_graph=True``)
are not available.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import AccumulateGrad, Function  # noqa: F401
from deepbox.autograd.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from deepbox.autograd.gradcheck import gradcheck, gradgradcheck  # noqa: F401
from deepbox.tensor import Tensor

xp = backend.xp


def _root_grads(tensors, grad_tensors, what):
    grads = []
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor) or not isinstance(grad_tensors, (list, tuple)):
        grad_tensors = [grad_tensors]
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"{what}: got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    for t, g in zip(tensors, grad_tensors):
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (got an output of shape "
                    f"{tuple(t.shape)}); pass `gradient=` with the output's shape"
                )
            if t._data.dtype.kind != "f":
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {t.dtype}")
            grads.append(xp.ones(t._data.shape, t._data.dtype))
        else:
            ga = g._data if isinstance(g, Tensor) else xp.asarray(g, dtype=t._data.dtype)
            if ga.shape != t._data.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[0] has a shape of {tuple(ga.shape)} and output[0] has a shape "
                    f"of {tuple(t.shape)}."
                )
            grads.append(ga.astype(t._data.dtype, copy=False))
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on."""
    from deepbox.autograd.engine import run_backward

    if create_graph:
        raise NotImplementedError("deepbox computes first-order gradients only: create_graph=True is not supported")
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    grads = _root_grads(tensors, grad_tensors, "backward")
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        got = run_backward(tensors, grads, bool(retain_graph), capture=inputs)
        for t, g in zip(inputs, got):
            if g is None:
                continue
            if t._grad is None:
                t._grad = _wrap(g.copy())
            else:
                t._grad._data += g
        return
    run_backward(tensors, grads, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         is_grads_batched=False, materialize_grads=False):
    """Return d(outputs)/d(inputs) without touching any ``.grad``."""
    from deepbox.autograd.engine import run_backward

    if create_graph:
        raise NotImplementedError("deepbox computes first-order gradients only: create_graph=True is not supported")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require grad")
    grads = _root_grads(outputs, grad_outputs, "grad")
    got = run_backward(outputs, grads, bool(retain_graph), capture=inputs)
    result = []
    for i, (t, g) in enumerate(zip(inputs, got)):
        if g is None:
            if materialize_grads:
                g = xp.zeros(t._data.shape, t._data.dtype)
            elif not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
        result.append(None if g is None else _wrap(g if g.base is None else g.copy()))
    return tuple(result)


def _wrap(arr):
    from deepbox.tensor import _make

    return _make(arr)

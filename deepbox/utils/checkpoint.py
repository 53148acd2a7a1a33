"""Activation checkpointing (``torch.utils.checkpoint``): trade compute for memory.

``checkpoint(fn, *args)`` runs ``fn`` without recording a graph, so none of its intermediate
activations are kept; during backward it runs ``fn`` again, this time recording, and
backpropagates through that fresh graph. A network split into k checkpointed segments keeps only
the segment boundaries alive between forward and backward. The random stream is saved and
restored around the recomputation, so dropout draws the same masks both times.
"""
from __future__ import annotations

import warnings

import deepbox
from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.tensor import Tensor, _make

__all__ = ["checkpoint", "checkpoint_sequential"]


class CheckpointFn(Function):
    """Forward without a graph; backward = recompute with a graph, then backpropagate through it.

    The inputs are the function's tensor arguments followed by the parameters it uses (when it
    is a module), so that the output joins the graph whenever any of them needs a gradient.
    """

    _pending_params = ()

    @staticmethod
    def forward(ctx, fn, preserve_rng_state, kwargs, n_args, *arrays):
        ctx.fn, ctx.kwargs, ctx.n_args = fn, kwargs, n_args
        ctx.params = CheckpointFn._pending_params
        ctx.rng_state = backend.get_rng_state() if preserve_rng_state else None
        ctx.save_for_backward(*arrays[:n_args])
        with deepbox.no_grad():
            out = fn(*_as_tensors(arrays[:n_args]), **kwargs)
        ctx.tuple_out = isinstance(out, tuple)
        outs = out if ctx.tuple_out else (out,)
        if not all(isinstance(o, Tensor) for o in outs):
            raise TypeError("checkpoint: the function must return a Tensor or a tuple of Tensors")
        arrays_out = tuple(o._data for o in outs)
        return arrays_out if ctx.tuple_out else arrays_out[0]

    @staticmethod
    def backward(ctx, *grads):
        inputs = _as_tensors(ctx.saved_tensors)
        needs = ctx.needs_input_grad[4:]
        for t, n in zip(inputs, needs):
            if n:
                t.requires_grad_(True)
        current = backend.get_rng_state()
        if ctx.rng_state is not None:
            backend.set_rng_state(ctx.rng_state)
        try:
            with deepbox.enable_grad():
                out = ctx.fn(*inputs, **ctx.kwargs)
        finally:
            if ctx.rng_state is not None:
                backend.set_rng_state(current)
        outs = out if isinstance(out, tuple) else (out,)
        params = ctx.params
        wrt = [t for t, n in zip(inputs, needs) if n] + [p for p, n in zip(params, needs[ctx.n_args:]) if n]
        pairs = [(o, _make(g)) for o, g in zip(outs, grads) if o.requires_grad and g is not None]
        found = iter(deepbox.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True)
                     if pairs and wrt else [None] * len(wrt))
        result = []
        for n in needs:
            g = next(found) if n else None
            result.append(None if g is None else g._data)
        return (None, None, None, None) + tuple(result)


def _as_tensors(arrays):
    return [_make(a) for a in arrays]


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=None, determinism_check="default",
               debug: bool = False, preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)``, its activations recomputed in backward instead of stored.

    Positional ``args`` that are Tensors get gradients; parameters that ``function`` uses (a module's
    weights) receive theirs during the recomputation. As in PyTorch, pass ``use_reentrant``
    explicitly; both values behave the same here.
    """
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
                      "deepbox behaves the same for True and False.", UserWarning, stacklevel=2)
    if context_fn is not None:
        raise NotImplementedError("checkpoint: context_fn is not supported by deepbox")
    if not all(isinstance(a, Tensor) for a in args):
        raise TypeError("deepbox's checkpoint takes Tensors as positional arguments; pass other values by keyword "
                        "or bind them with functools.partial")
    params = _parameters_of(function)
    if not deepbox.is_grad_enabled() or not any(t.requires_grad for t in (*args, *params)):
        return function(*args, **kwargs)
    ctx_params = [p for p in params if p.requires_grad]
    return _apply(function, preserve_rng_state, kwargs, args, ctx_params)


def _apply(function, preserve_rng_state, kwargs, args, params):
    # the parameters travel as inputs (for the graph) and on the function object (for the recomputation)
    CheckpointFn._pending_params = params
    try:
        return CheckpointFn.apply(function, preserve_rng_state, kwargs, len(args), *args, *params)
    finally:
        CheckpointFn._pending_params = ()


def _parameters_of(function) -> list:
    """The parameters of ``function`` when it is a Module or a bound method of one; else none."""
    owner = function if hasattr(function, "parameters") else getattr(function, "__self__", None)
    params = getattr(owner, "parameters", None)
    return list(params()) if callable(params) else []


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None, **kwargs):
    """Run a Sequential (or list of modules) in ``segments`` checkpointed chunks; the last chunk runs normally."""
    if isinstance(functions, deepbox.nn.Sequential):
        functions = list(functions.children())
    functions = list(functions)
    segment_size = max(len(functions) // segments, 1)
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        chunk = deepbox.nn.Sequential(*functions[start:end + 1])
        input = checkpoint(chunk, input, use_reentrant=True if use_reentrant is None else use_reentrant, **kwargs)
    for f in functions[end + 1:]:
        input = f(input)
    return input

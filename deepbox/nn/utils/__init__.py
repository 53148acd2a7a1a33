"""Utilities for nn: gradient clipping, parameters as one vector, rnn packing (``nn.utils.rnn``)."""
from __future__ import annotations

import math
from collections.abc import Iterable

from deepbox import backend
from deepbox.tensor import Tensor, _make

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
           "parameters_to_vector", "vector_to_parameters", "weight_norm", "remove_weight_norm", "spectral_norm",
           "remove_spectral_norm", "parametrize", "parametrizations"]

xp = backend.xp


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p._grad for p in parameters if p._grad is not None]


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type`` norm of all ``tensors`` taken together (as if concatenated)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    arrays = [t._data for t in tensors]
    norm_type = float(norm_type)
    if not arrays:
        return _make(xp.asarray(0.0, dtype=backend.default_float_np()))
    dt = arrays[0].dtype
    if norm_type == math.inf:
        total = max(float(xp.abs(a).max()) if a.size else 0.0 for a in arrays)
    elif norm_type == -math.inf:
        total = min(float(xp.abs(a).min()) if a.size else math.inf for a in arrays)
    elif norm_type == 2.0:
        # a dot product per tensor: one BLAS pass instead of abs, power, sum
        total = math.sqrt(sum(float(xp.dot(a.ravel(), a.ravel())) for a in arrays))
    else:
        total = sum(float((xp.abs(a) ** norm_type).sum()) for a in arrays) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return _make(xp.asarray(total, dtype=dt))


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1."""
    grads = _grads(parameters)
    tn = float(total_norm)
    coef = float(max_norm) / (tn + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            g._data *= g._data.dtype.type(coef)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Rescale the gradients in place so that their total ``norm_type`` norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor), as PyTorch does.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        parameters = list(parameters)
    grads = _grads(parameters)
    if not grads:
        return _make(xp.asarray(0.0, dtype=backend.default_float_np()))
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    import warnings

    warnings.warn("`nn.utils.clip_grad_norm` is now deprecated in favor of `nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp.clip(g._data, -clip_value, clip_value, out=g._data)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (a copy)."""
    if isinstance(parameters, Tensor):
        raise TypeError(f"expected an iterable of Tensors, got {type(parameters).__name__}")
    ps = list(parameters)
    if not ps:
        raise RuntimeError("parameters_to_vector: expected a non-empty iterable of tensors")
    from deepbox.ops import cat

    return cat([p.reshape(-1) for p in ps])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (in place, without a graph)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected deepbox.Tensor, but got: {type(vec).__name__}")
    ps = list(parameters)
    total = sum(p.numel() for p in ps)
    if vec.dim() != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: vec has shape {tuple(vec.shape)}, expected ({total},) "
                           "for these parameters")
    v = vec._data
    i = 0
    for p in ps:
        n = p.numel()
        p._data = v[i:i + n].reshape(p._data.shape).astype(p._data.dtype, copy=False)
        p._version[0] += 1
        i += n


from deepbox.nn.utils import parametrizations, parametrize, rnn  # noqa: F401,E402
from deepbox.nn.utils.weight_norm import (  # noqa: F401,E402
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)

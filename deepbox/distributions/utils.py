"""Helpers shared by the distributions: broadcasting parameters, probabilities <-> logits, cached properties."""
from __future__ import annotations

import numbers

import deepbox
import deepbox.nn.functional as F
from deepbox.tensor import Tensor

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits"]


def broadcast_all(*values):
    """Tensors of one broadcast shape; numbers become tensors of the first tensor's dtype (or the default)."""
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number or deepbox.Tensor.")
    tensors = [v for v in values if isinstance(v, Tensor)]
    dtype = tensors[0].dtype if tensors else deepbox.get_default_dtype()
    values = [v if isinstance(v, Tensor) else deepbox.tensor(v, dtype=dtype) for v in values]
    return deepbox.broadcast_tensors(*values)


def clamp_probs(probs: Tensor) -> Tensor:
    eps = deepbox.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    return deepbox.sigmoid(logits) if is_binary else F.softmax(logits, dim=-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    p = clamp_probs(probs)
    return deepbox.log(p) - deepbox.log1p(-p) if is_binary else deepbox.log(p)


class lazy_property:  # noqa: N801 - PyTorch's name
    """A property computed on first use and then stored on the instance (probs from logits, and back)."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value

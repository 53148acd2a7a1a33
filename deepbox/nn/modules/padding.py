"""Padding layers: ``nn.ZeroPad2d``, ``nn.ReflectionPad1d``, ... each a thin module over ``F.pad``.

The number in the name is how many trailing dimensions are padded (1: the last, as for (N, C, L);
2: the last two, as for images; 3: volumes). ``padding`` is one int for every side or a tuple
(left, right[, top, bottom[, front, back]]), as ``F.pad`` takes it.
"""
from __future__ import annotations

from deepbox.nn import functional as F
from deepbox.nn.modules.module import Module

__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]


class _PadNd(Module):
    mode = "constant"
    n_dims = 1

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self.n_dims)
        padding = tuple(int(p) for p in padding)
        if len(padding) != 2 * self.n_dims:
            raise ValueError(f"{type(self).__name__} expects padding as one int or a tuple of {2 * self.n_dims} "
                             f"ints, got {padding}")
        self.padding = padding
        self.value = value

    def forward(self, input):
        if input.dim() not in (self.n_dims + 1, self.n_dims + 2):
            raise ValueError(f"{type(self).__name__}: expected a {self.n_dims + 1}-D or {self.n_dims + 2}-D input, "
                             f"got {input.dim()}-D (shape {tuple(input.shape)})")
        if self.mode == "constant":
            return F.pad(input, self.padding, mode="constant", value=self.value)
        return F.pad(input, self.padding, mode=self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


def _make(name, mode, n_dims, doc):
    cls = type(name, (_PadNd,), {"mode": mode, "n_dims": n_dims, "__doc__": doc, "__module__": __name__})
    return cls


class ConstantPad1d(_PadNd):
    """Pad the last dimension with ``value``."""

    n_dims = 1

    def __init__(self, padding, value: float):
        super().__init__(padding, value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad2d(ConstantPad1d):
    """Pad the last two dimensions with ``value``."""

    n_dims = 2


class ConstantPad3d(ConstantPad1d):
    """Pad the last three dimensions with ``value``."""

    n_dims = 3


class ZeroPad1d(_PadNd):
    """Pad the last dimension with zeros."""

    n_dims = 1

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad2d(ZeroPad1d):
    """Pad the last two dimensions with zeros."""

    n_dims = 2


class ZeroPad3d(ZeroPad1d):
    """Pad the last three dimensions with zeros."""

    n_dims = 3


ReflectionPad1d = _make("ReflectionPad1d", "reflect", 1, "Pad the last dimension with its reflection at the edge.")
ReflectionPad2d = _make("ReflectionPad2d", "reflect", 2, "Pad the last two dimensions with their reflection.")
ReflectionPad3d = _make("ReflectionPad3d", "reflect", 3, "Pad the last three dimensions with their reflection.")
ReplicationPad1d = _make("ReplicationPad1d", "replicate", 1, "Pad the last dimension by repeating the edge value.")
ReplicationPad2d = _make("ReplicationPad2d", "replicate", 2, "Pad the last two dimensions by repeating the edges.")
ReplicationPad3d = _make("ReplicationPad3d", "replicate", 3, "Pad the last three dimensions by repeating the edges.")
CircularPad1d = _make("CircularPad1d", "circular", 1, "Pad the last dimension by wrapping around.")
CircularPad2d = _make("CircularPad2d", "circular", 2, "Pad the last two dimensions by wrapping around.")
CircularPad3d = _make("CircularPad3d", "circular", 3, "Pad the last three dimensions by wrapping around.")

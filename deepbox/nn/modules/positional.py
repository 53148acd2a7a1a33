"""Positional encodings for transformers. These are deepbox's own (PyTorch has none in ``torch.nn``).

Attention is blind to order: permuting the tokens permutes its output. A positional
encoding adds a position-dependent vector to each token embedding so the model can
tell positions apart. Two classic choices:

* ``SinusoidalPositionalEncoding``: fixed sines and cosines of geometrically spaced
  frequencies ("Attention Is All You Need", section 3.5), no parameters;
* ``LearnedPositionalEncoding``: one trained vector per position (as GPT-2 does).
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.nn import init
from deepbox.nn.modules.dropout import Dropout
from deepbox.nn.modules.module import Module
from deepbox.nn.parameter import Parameter
from deepbox.tensor import _make

__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]

xp = backend.xp


def _check(owner, max_len, d_model, x, batch_first):
    if x.dim() not in (2, 3):
        raise ValueError(f"{owner}: expected input of shape (L, N, E), (N, L, E) or (L, E), got {tuple(x.shape)}")
    if x.shape[-1] != d_model:
        raise ValueError(f"{owner}: expected feature size {d_model}, got {x.shape[-1]}")
    L = x.shape[1] if (batch_first and x.dim() == 3) else x.shape[0]
    if L > max_len:
        raise ValueError(f"{owner}: sequence length {L} exceeds max_len={max_len}")
    return L


class SinusoidalPositionalEncoding(Module):
    """Adds ``PE[pos, 2i] = sin(pos / 10000^(2i/d))``, ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d))``, then dropout.

    deepbox extension (not in ``torch.nn``).

    Args:
        d_model: feature size E. max_len: longest sequence (default 5000). dropout: applied after the sum.
        batch_first: input (N, L, E) instead of (L, N, E).

    Shape: input (L, N, E), (N, L, E) with ``batch_first``, or (L, E); output the same.
    The table is a non-persistent buffer ``pe`` (max_len, E): it is not saved in state dicts.
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, batch_first: bool = False,
                 dtype=None) -> None:
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        nd = backend.to_numpy_dtype(dtype) if dtype is not None else backend.default_float_np()
        pos = xp.arange(max_len, dtype=xp.float64)[:, None]
        div = xp.exp(xp.arange(0, d_model, 2, dtype=xp.float64) * (-math.log(10000.0) / d_model))
        pe = xp.zeros((max_len, d_model), xp.float64)
        pe[:, 0::2] = xp.sin(pos * div)
        pe[:, 1::2] = xp.cos(pos * div[: d_model // 2])
        self.register_buffer("pe", _make(pe.astype(nd)), persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        L = _check(type(self).__name__, self.max_len, self.d_model, x, self.batch_first)
        pe = self.pe[:L]
        if x.dim() == 3:
            pe = pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)
        return self.dropout(x + pe.to(x.dtype))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"


class LearnedPositionalEncoding(Module):
    """Adds a trained vector ``weight[pos]`` (max_len, E) to each position, then dropout.

    deepbox extension (not in ``torch.nn``). ``weight`` starts as N(0, 0.02^2), as in GPT-2.

    Args and shapes as ``SinusoidalPositionalEncoding``.
    """

    def __init__(self, d_model: int, max_len: int = 1024, dropout: float = 0.0, batch_first: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        nd = backend.to_numpy_dtype(dtype) if dtype is not None else backend.default_float_np()
        self.weight = Parameter(_make(xp.empty((max_len, d_model), nd)))
        self.dropout = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight, 0.0, 0.02)

    def forward(self, x):
        L = _check(type(self).__name__, self.max_len, self.d_model, x, self.batch_first)
        pe = self.weight[:L]
        if x.dim() == 3:
            pe = pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)
        return self.dropout(x + pe)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"

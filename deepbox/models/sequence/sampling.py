"""Drawing the next token from a language model's logits: temperature and top-k."""
from __future__ import annotations

import deepbox
from deepbox import backend
from deepbox.backend import xp

__all__ = ["sample_next"]


def sample_next(logits, temperature: float = 1.0, top_k: int | None = None, generator=None):
    """Sample one id per row of ``logits`` (B, V); returns an int64 tensor (B,).

    ``temperature`` < 1 sharpens the distribution, > 1 flattens it, 0 picks the argmax (greedy).
    ``top_k`` keeps only the k most likely tokens before sampling.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    z = (logits._data if isinstance(logits, deepbox.Tensor) else xp.asarray(logits)).astype(xp.float64)
    if temperature == 0:
        return deepbox.tensor(z.argmax(-1).astype(xp.int64))
    z = z / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        k = min(top_k, z.shape[-1])
        kth = xp.partition(z, -k, axis=-1)[:, -k][:, None]
        z = xp.where(z < kth, -xp.inf, z)
    z = z - z.max(-1, keepdims=True)
    p = xp.exp(z)
    p /= p.sum(-1, keepdims=True)
    u = backend.rng(generator).random((p.shape[0], 1))
    ids = (p.cumsum(-1) < u).sum(-1)
    return deepbox.tensor(xp.minimum(ids, p.shape[-1] - 1).astype(xp.int64))

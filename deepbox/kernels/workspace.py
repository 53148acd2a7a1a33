"""One reusable pool of large scratch buffers for every fast kernel.

A fresh array of tens of MB costs page faults on every step (measured: a 29 MB copy takes 5.9 ms
into a new array, 2.0 ms into a reused one; a fresh LSTM work buffer ~15 % of the layer's forward),
and two threads faulting at once serialise. The convolutions (im2col chunks, padded inputs), the
recurrent layers (the per-step factors kept from forward to backward) and the optimisers (update
temporaries) therefore take their large buffers from this one pool.

A buffer is free again when nothing but the pool refers to it -- a buffer saved for backward is
released when the engine frees the graph node -- which CPython's reference count tells exactly
(views hold a reference to their base). Buffers are pooled by size class (the next power of two of
their bytes), and a request gets a view of the first bytes of one, so varying batch sizes and
sequence lengths reuse the same few buffers. Only buffers of at least ``min_bytes`` are pooled (a
small array costs less to allocate than to look up), at most ``max_bytes`` in all.
"""
from __future__ import annotations

import math
import sys
import threading

from deepbox.backend import xp

__all__ = ["Workspace", "workspace"]


class Workspace:
    """Reusable large buffers (see the module docstring)."""

    min_bytes = 1 << 18
    max_bytes = 1 << 30

    def __init__(self):
        self.free_bytes = self.max_bytes
        self.pool: dict = {}
        self.lock = threading.Lock()   # two threads must not both take the same free buffer

    def get(self, shape, dtype, tag=None, zeroed=False, zero=False):
        """A free buffer of ``shape`` (a view of a pooled one when large enough to pool).

        ``tag`` keeps buffers apart (per thread, per padded geometry). With ``zeroed`` a new buffer
        is all zeros, also past the part this request sees (a later request of the same class may
        see more of it), and a reused one is returned as it was left (a padded input's zero border
        stays zero). With ``zero`` the returned view is all zeros every time.
        """
        dtype = xp.dtype(dtype)
        shape = tuple(shape)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        new = xp.zeros if (zeroed or zero) else xp.empty
        if nbytes < self.min_bytes:
            return new(shape, dtype=dtype)
        size = 1 << (nbytes - 1).bit_length()
        with self.lock:
            bufs = self.pool.setdefault((size, dtype.str, tag), [])
            for b in bufs:
                if sys.getrefcount(b) == 3:       # the list, the loop variable, getrefcount's argument
                    out = b[:count].reshape(shape)
                    if zero:
                        out.fill(0)
                    return out
            b = new(size // dtype.itemsize, dtype=dtype)
            if size <= self.free_bytes:
                self.free_bytes -= size
                bufs.append(b)
            return b[:count].reshape(shape)

    def like(self, a, tag=None):
        """A free buffer of ``a``'s shape and dtype (contents undefined)."""
        return self.get(a.shape, a.dtype, tag=tag)

    def clear(self):
        """Forget every pooled buffer (those still in use stay valid)."""
        with self.lock:
            self.pool.clear()
            self.free_bytes = self.max_bytes


workspace = Workspace()

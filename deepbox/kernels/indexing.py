"""Fast scatter-add of rows (an embedding's backward): one compiled pass instead of a sort.

The twin of ``deepbox.ops.indexing.index_add_rows``: ``out[idx[i]] += src[i]`` for every row ``i``, in
``i``'s order, which is the order the reference's stable sort keeps within each index, so the sums are
the same. The reference sorts the indices and reduces each group (``argsort`` + ``add.reduceat``);
for a language model's 2048 tokens x 64 features that took about 0.8 ms against PyTorch's 0.25 ms for
the whole embedding forward and backward. It takes float32/64 rows of at least ``MIN_SIZE`` values
and integer indices, and checks the indices' range before writing (the loop does not).
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.backend import xp
from deepbox.kernels import switch
from deepbox.ops.indexing import index_add_rows

__all__ = ["index_add_rows_kernel"]

MIN_SIZE = 4096     # src values below which the reference's few NumPy calls cost about the same


def _accepts(n_rows, idx, src):
    return (idx.ndim == 1 and idx.dtype.kind in "iu" and src.ndim >= 1 and src.shape[0] == idx.shape[0]
            and src.size >= MIN_SIZE and switch.kernels_for(src) is not None)


@kernels.fast_twin(index_add_rows)
def index_add_rows_kernel(n_rows, idx, src):
    """``index_add_rows`` as one compiled pass over the rows (see the module docstring)."""
    if src.dtype.char not in "fd" or (idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_rows)):
        return index_add_rows(n_rows, idx, src)     # negative indices wrap there, too large ones raise
    out = xp.zeros((n_rows,) + src.shape[1:], src.dtype)
    if idx.size:
        rows = xp.ascontiguousarray(src).reshape(idx.shape[0], -1)
        switch.kernels().scatter_add_rows(idx, rows, out.reshape(n_rows, -1))
    return out


index_add_rows_kernel.accepts = _accepts

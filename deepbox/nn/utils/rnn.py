"""Variable-length sequences: padding and packing, as ``torch.nn.utils.rnn``.

A ``PackedSequence`` stores a batch of sequences sorted by decreasing length, time step
by time step: ``data[offset_t : offset_t + batch_sizes[t]]`` are the ``batch_sizes[t]``
sequences still running at step ``t``. Recurrent layers read ``batch_sizes`` and update
only those rows at each step, so a padded batch gives exactly what separate sequences
give. Packing and unpacking are row gathers (``index_select``) and so carry gradients.
"""
from __future__ import annotations

from typing import NamedTuple

import deepbox
from deepbox.backend import xp
from deepbox.tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence", "invert_permutation"]


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = permutation._data if isinstance(permutation, Tensor) else xp.asarray(permutation)
    inv = xp.empty_like(p)
    inv[p] = xp.arange(p.size, dtype=p.dtype)
    return deepbox.tensor(inv)


class PackedSequence(NamedTuple):
    """``(data, batch_sizes, sorted_indices, unsorted_indices)``.

    ``data`` (sum of lengths, *) holds the steps of all sequences, step-major; ``batch_sizes``
    (int64, one per step) how many sequences run at each step; ``sorted_indices`` maps the
    sorted batch to the original order (``None`` when the input was already sorted).
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> PackedSequence:
        return self._replace(data=self.data.to(*args, **kwargs))

    def float(self) -> PackedSequence:
        return self._replace(data=self.data.float())

    def double(self) -> PackedSequence:
        return self._replace(data=self.data.double())

    def cpu(self) -> PackedSequence:
        return self

    @property
    def is_cuda(self) -> bool:
        return False

    def is_pinned(self) -> bool:
        return False


def _lengths_array(lengths):
    if isinstance(lengths, Tensor):
        arr = lengths._data
    else:
        arr = xp.asarray(lengths)
    arr = arr.astype(xp.int64).reshape(-1)
    if arr.size and arr.min() < 1:
        raise RuntimeError(f"pack_padded_sequence: every length must be at least 1, got {arr.tolist()}")
    return arr


def _batch_sizes(sorted_lengths):
    T = int(sorted_lengths[0]) if sorted_lengths.size else 0
    return (sorted_lengths[None, :] > xp.arange(T)[:, None]).sum(1).astype(xp.int64)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of ``lengths``.

    With ``enforce_sorted`` the lengths must be in decreasing order; otherwise the batch is
    sorted here and ``sorted_indices`` records the permutation.
    """
    lens = _lengths_array(lengths)
    B = input.shape[0 if batch_first else 1]
    if lens.size != B:
        raise ValueError(f"pack_padded_sequence: got {lens.size} lengths for a batch of {B} sequences")
    T = input.shape[1 if batch_first else 0]
    if lens.size and lens.max() > T:
        raise RuntimeError(f"pack_padded_sequence: a length ({int(lens.max())}) exceeds the padded length ({T})")
    if enforce_sorted:
        if xp.any(lens[1:] > lens[:-1]):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                               "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence "
                               "to sidestep this requirement if you do not need ONNX exportability.")
        sorted_idx = None
        order = xp.arange(B)
    else:
        order = xp.argsort(-lens, kind="stable")
        sorted_idx = deepbox.tensor(order.astype(xp.int64))
    slens = lens[order]
    bsz = _batch_sizes(slens)
    # row (t, j) of the sorted batch is row (t, order[j]) of the input
    step, seq = (1, T) if batch_first else (B, 1)   # strides of (t, b) in the flattened input
    rows = xp.concatenate([t * step + order[: int(n)] * seq for t, n in enumerate(bsz)]).astype(xp.int64)
    flat = input.reshape((T * B,) + tuple(input.shape[2:]))
    data = flat.index_select(0, deepbox.tensor(rows))
    return PackedSequence(data, deepbox.tensor(bsz), sorted_idx, invert_permutation(sorted_idx))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None):
    """Undo ``pack_padded_sequence``: returns ``(padded, lengths)`` in the original batch order."""
    data, bsz_t, sorted_idx, unsorted_idx = sequence
    bsz = bsz_t._data if isinstance(bsz_t, Tensor) else xp.asarray(bsz_t)
    T = len(bsz)
    B = int(bsz[0])
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence ({T}), "
                             f"got {total_length}")
        T_out = total_length
    else:
        T_out = T
    slens = (bsz[None, :] > xp.arange(B)[:, None]).sum(1)
    order = xp.arange(B) if unsorted_idx is None else unsorted_idx._data  # original b -> sorted j
    offsets = xp.concatenate([[0], xp.cumsum(bsz)[:-1]]).astype(xp.int64)
    N = data.shape[0]
    # index of each padded (t, b) in [data; padding row]
    tt = xp.arange(T_out)[:, None]
    j = order[None, :]
    valid = tt < slens[j]
    src = xp.where(valid, offsets[xp.minimum(tt, T - 1)] + j, N)
    if batch_first:
        src = src.T
    pad_row = deepbox.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype)
    padded = deepbox.cat([data, pad_row], 0).index_select(0, deepbox.tensor(src.reshape(-1).astype(xp.int64)))
    padded = padded.reshape(src.shape + tuple(data.shape[1:]))
    lengths = deepbox.tensor(slens[order].astype(xp.int64))
    return padded, lengths


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"):
    """Stack sequences of shapes (L_i, *) into (L_max, B, *) (or (B, L_max, *)), padding with ``padding_value``."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    seqs = list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    L = max(s.shape[0] for s in seqs)
    rest = tuple(seqs[0].shape[1:])
    out = []
    for s in seqs:
        if tuple(s.shape[1:]) != rest:
            raise RuntimeError(f"pad_sequence: all sequences need the same trailing shape, got {rest} and "
                               f"{tuple(s.shape[1:])}")
        n = L - s.shape[0]
        if n:
            fill = deepbox.full((n,) + rest, padding_value, dtype=s.dtype)
            s = deepbox.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        out.append(s)
    return deepbox.stack(out, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False):
    """Split a padded batch back into a list of sequences of ``lengths``."""
    lens = _lengths_array(lengths)
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, : int(n)] for i, n in enumerate(lens)]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences of shapes (L_i, *)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence):
    """Unpack a ``PackedSequence`` into a list of sequences, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)

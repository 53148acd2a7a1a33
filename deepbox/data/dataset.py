"""Datasets: PyTorch's ``torch.utils.data`` dataset classes.

A map-style dataset answers ``dataset[i]`` and ``len(dataset)``; an iterable
dataset yields its samples. ``TensorDataset`` and ``Subset`` also answer
``__getitems__(indices)`` with a whole batch at once, which the ``DataLoader``
uses (as PyTorch 2.x does) so that in-memory data is batched by one fancy-index
per tensor instead of one Python call per sample.
"""
from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Sequence

from deepbox import backend
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "StackDataset",
    "ConcatDataset",
    "ChainDataset",
    "Subset",
    "random_split",
]


class Dataset:
    """An abstract map-style dataset: subclasses define ``__getitem__`` and usually ``__len__``.

    A subclass may also define ``__getitems__(indices) -> list of samples`` to fetch a
    batch in one call; the ``DataLoader`` prefers it when present.
    """

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """An abstract dataset that yields its samples from ``__iter__``.

    With ``num_workers > 0`` every worker process iterates its own copy; use
    ``deepbox.utils.data.get_worker_info()`` inside ``__iter__`` to split the work.
    """

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


def _length0(t) -> int:
    if isinstance(t, Tensor):
        if t._data.ndim == 0:
            raise ValueError("TensorDataset needs tensors with at least one dimension, got a 0-d tensor")
        return t._data.shape[0]
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) == 0:
        raise TypeError(f"TensorDataset expects tensors or arrays with a first dimension, got {type(t).__name__}")
    return shape[0]


def _take(t, index):
    """``t[index]`` for a tensor (no graph unless it requires grad) or an array."""
    if isinstance(t, Tensor):
        if t.requires_grad:
            return t[index]
        # an int index on a 1-d array gives a NumPy scalar; asarray keeps it a 0-d array
        return _make(xp.asarray(t._data[index]))
    return t[index]


class BatchedSamples(Sequence):
    """A batch of samples fetched at once, kept as one stacked array per field.

    It behaves as the list of per-sample tuples that ``__getitems__`` promises (``len``,
    indexing, iteration), so any ``collate_fn`` works on it; ``default_collate``
    recognises it and returns the stacked fields without touching the samples one by one.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: tuple):
        self.fields = fields

    def __len__(self) -> int:
        return _length0(self.fields[0]) if self.fields else 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"batch index {i} out of range for a batch of {n}")
        return tuple(_take(f, i) for f in self.fields)

    def __repr__(self) -> str:
        return f"BatchedSamples(len={len(self)}, fields={len(self.fields)})"


class TensorDataset(Dataset):
    """A dataset wrapping tensors (or arrays) that share their first dimension.

    Sample ``i`` is ``tuple(t[i] for t in tensors)``.

    Args:
        *tensors: tensors with the same size in dimension 0.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        n = _length0(tensors[0])
        for k, t in enumerate(tensors):
            if _length0(t) != n:
                raise ValueError(
                    f"Size mismatch between tensors: tensor 0 has {n} samples but tensor {k} has {_length0(t)}"
                )
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(_take(t, index) for t in self.tensors)

    def __getitems__(self, indices):
        idx = xp.asarray(indices, dtype=xp.int64)
        n = len(self)
        if idx.size and (idx.max() >= n or idx.min() < -n):
            bad = int(idx[(idx >= n) | (idx < -n)][0])
            raise IndexError(f"index {bad} is out of range for a TensorDataset of {n} samples")
        return BatchedSamples(tuple(_take(t, idx) for t in self.tensors))

    def __len__(self) -> int:
        return _length0(self.tensors[0])


class StackDataset(Dataset):
    """Samples assembled from several datasets of equal length, as a tuple or a dict.

    ``StackDataset(a, b)[i] == (a[i], b[i])``; ``StackDataset(x=a, y=b)[i] == {"x": a[i], "y": b[i]}``.
    """

    def __init__(self, *args: Dataset, **kwargs: Dataset):
        if args and kwargs:
            raise ValueError("StackDataset takes either datasets as positional arguments (tuple samples) or as "
                             "keyword arguments (dict samples), not both")
        if args:
            self._length = len(args[0])
            if any(self._length != len(d) for d in args):
                raise ValueError("Size mismatch between datasets")
            self.datasets = args
        elif kwargs:
            tmp = list(kwargs.values())
            self._length = len(tmp[0])
            if any(self._length != len(d) for d in tmp):
                raise ValueError("Size mismatch between datasets")
            self.datasets = kwargs
        else:
            raise ValueError("At least one dataset should be passed")

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset):
    """The concatenation of several map-style datasets.

    Args:
        datasets: the datasets, in order; iterable datasets are refused.
    """

    @staticmethod
    def cumsum(sequence):
        r, s = [], 0
        for e in sequence:
            s += len(e)
            r.append(s)
        return r

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        if dataset_idx >= len(self.datasets):
            raise IndexError(f"index {idx} is out of range for a ConcatDataset of {len(self)} samples")
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return self.datasets[dataset_idx][sample_idx]


class ChainDataset(IterableDataset):
    """The chaining of several iterable datasets, one after the other."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(d)
        return total


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the whole dataset.
        indices: the indices into it that make the subset.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]):
        # passes a whole batch down when the wrapped dataset can take one (as PyTorch 2.x does)
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[idx] for idx in indices])
        return [self.dataset[self.indices[idx]] for idx in indices]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float], generator=None) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping subsets of the given lengths.

    Args:
        dataset: the dataset to split.
        lengths: the subset lengths, or fractions that sum to 1; each subset then gets
            ``floor(frac * len(dataset))`` samples and the remainder is dealt out one by one
            from the first subset on (PyTorch's rule).
        generator: a ``deepbox.Generator`` for a reproducible split (default: deepbox's default one).
    """
    lengths = list(lengths)
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            subset_lengths.append(math.floor(n * frac))
        remainder = n - sum(subset_lengths)
        for i in range(remainder):
            subset_lengths[i % len(subset_lengths)] += 1
        lengths = subset_lengths
        for i, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
    for i, length in enumerate(lengths):
        if length < 0 or int(length) != length:
            raise ValueError(f"random_split lengths must be non-negative integers or fractions, got {length!r} "
                             f"at index {i}")
    if sum(lengths) != n:
        raise ValueError(
            f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input dataset ({n})!"
        )
    indices = backend.rng(generator).permutation(n).tolist()
    return [
        Subset(dataset, indices[offset - length: offset])
        for offset, length in zip(itertools.accumulate(int(x) for x in lengths), (int(x) for x in lengths))
    ]

"""Samplers: which indices a ``DataLoader`` fetches, and in which order (PyTorch's names).

Random samplers draw from a ``deepbox.Generator``; without one they draw a fresh seed
from deepbox's default generator each epoch (as PyTorch does), so ``deepbox.manual_seed``
makes shuffling reproducible.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from deepbox import backend
from deepbox.tensor import Tensor

xp = backend.xp

__all__ = [
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
]


class Sampler:
    """Base class of samplers: ``__iter__`` yields indices (or lists of indices)."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self) -> Iterator:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """Yields ``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def _index_array(self):
        return xp.arange(len(self.data_source))

    def __len__(self) -> int:
        return len(self.data_source)


def _epoch_rng(generator):
    """The NumPy generator for one pass: ``generator``'s, or a fresh one seeded from the default."""
    if generator is not None:
        return backend.rng(generator)
    seed = int(backend.rng().integers(0, 2**63 - 1))
    return backend.Generator().manual_seed(seed).rng


class RandomSampler(Sampler):
    """Yields the indices of ``data_source`` in random order.

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw with replacement (then ``num_samples`` may exceed the length).
        num_samples: how many indices to yield (default: ``len(data_source)``); without
            replacement, more than the length chains several permutations.
        generator: a ``deepbox.Generator``.
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        # the dataset may change size between epochs
        if self._num_samples is None:
            return len(self.data_source)
        return self._num_samples

    def _index_array(self):
        n = len(self.data_source)
        rng = _epoch_rng(self.generator)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples)
        m = self.num_samples
        parts = [rng.permutation(n) for _ in range(m // n)]
        parts.append(rng.permutation(n)[: m % n])
        return xp.concatenate(parts)

    def __iter__(self) -> Iterator[int]:
        # a generator function, so the draw happens on the first next() as in PyTorch
        yield from self._index_array().tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """Yields the given indices in random order, without replacement."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices = indices
        self.generator = generator

    def _index_array(self):
        perm = _epoch_rng(self.generator).permutation(len(self.indices))
        idx = self.indices._data if isinstance(self.indices, Tensor) else self.indices
        return xp.asarray(idx)[perm] if len(perm) else xp.zeros(0, dtype=xp.int64)

    def __iter__(self) -> Iterator[int]:
        yield from self._index_array().tolist()

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """Yields indices ``0..len(weights)-1`` drawn with probabilities proportional to ``weights``.

    Args:
        weights: non-negative weights, one per sample (need not sum to one).
        num_samples: how many indices to draw.
        replacement: with replacement (the default); without it, ``num_samples`` must not
            exceed the number of non-zero weights.
        generator: a ``deepbox.Generator``.
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        w = weights._data if isinstance(weights, Tensor) else weights
        w = xp.asarray(w, dtype=xp.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        if w.size == 0 or not xp.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        if not replacement and num_samples > int((w > 0).sum()):
            raise ValueError(f"cannot draw {num_samples} samples without replacement from "
                             f"{int((w > 0).sum())} non-zero weights")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def _index_array(self):
        rng = _epoch_rng(self.generator)
        return rng.choice(self.weights.size, size=self.num_samples, replace=self.replacement,
                          p=self.weights / self.weights.sum())

    def __iter__(self) -> Iterator[int]:
        yield from self._index_array().tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler: any iterable of indices.
        batch_size: the size of each batch.
        drop_last: drop the last batch if it is smaller than ``batch_size``.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    """

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        bs = self.batch_size
        index_array = getattr(self.sampler, "_index_array", None)
        if index_array is not None and type(self.sampler).__iter__ in _VECTOR_ITERS:
            # the built-in samplers hand over all indices at once: slicing them into
            # batches avoids one Python step per index
            idx = index_array()
            stop = len(idx) - len(idx) % bs if self.drop_last else len(idx)
            for start in range(0, stop, bs):
                yield idx[start: start + bs].tolist()
            return
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == bs:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


# samplers whose __iter__ is exactly "iterate over _index_array()"; a subclass that
# overrides __iter__ falls back to the generic path
_VECTOR_ITERS = {SequentialSampler.__iter__, RandomSampler.__iter__, SubsetRandomSampler.__iter__,
                 WeightedRandomSampler.__iter__}

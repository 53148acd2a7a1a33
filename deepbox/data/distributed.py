"""``DistributedSampler``: each rank's share of a dataset for data-parallel training (PyTorch's semantics).

Every rank draws the same permutation (seeded by ``seed + epoch``, so call ``set_epoch`` at the start
of each epoch for a new order), pads it by repeating its start until its length is a multiple of the
number of ranks (or, with ``drop_last``, cuts the tail), and takes every ``num_replicas``-th index
starting at its own rank. So the ranks' shares are disjoint and equal in size, and together cover
the dataset (with a few samples twice when padded).
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.data.sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """Yields this rank's indices of ``dataset``.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas: the number of ranks (default: ``deepbox.distributed.get_world_size()``).
        rank: this rank (default: ``deepbox.distributed.get_rank()``).
        shuffle: a new permutation each epoch (default True), seeded by ``seed + epoch``.
        seed: the same on every rank (default 0).
        drop_last: drop the tail that does not divide evenly instead of padding with repeats.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from deepbox import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler needs num_replicas and rank, or an initialised process "
                                   "group (deepbox.distributed.init_process_group)")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive int, got {num_replicas!r}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            rng = backend.Generator().manual_seed(self.seed + self.epoch).rng
            indices = rng.permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            else:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[:self.total_size]
        assert len(indices) == self.total_size
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of this epoch (call before each epoch's iteration, on every rank)."""
        self.epoch = epoch

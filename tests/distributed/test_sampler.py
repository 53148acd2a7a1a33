"""DistributedSampler against torch.utils.data.distributed.DistributedSampler (one process, explicit ranks)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data.distributed import DistributedSampler as TorchSampler

from deepbox.utils.data import DataLoader, DistributedSampler


@pytest.mark.parametrize("n,replicas", [(10, 3), (11, 2), (2, 5), (12, 4), (1, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_shares_match_pytorch(n, replicas, drop_last):
    data = list(range(n))
    for rank in range(replicas):
        ours = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("n,replicas", [(10, 3), (11, 2), (2, 5), (12, 4)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_shares_partition_a_common_permutation(n, replicas, drop_last):
    data = list(range(n))
    for epoch in range(3):
        shares = []
        for rank in range(replicas):
            s = DistributedSampler(data, num_replicas=replicas, rank=rank, seed=7, drop_last=drop_last)
            s.set_epoch(epoch)
            shares.append(list(s))
            assert len(shares[-1]) == len(TorchSampler(data, num_replicas=replicas, rank=rank, drop_last=drop_last))
        # interleave the shares back: they are one permutation (padded by wrapping, or cut)
        total = [shares[r][i] for i in range(len(shares[0])) for r in range(replicas)]
        if drop_last:
            assert len(set(total)) == len(total) <= n
        else:
            assert set(total) == set(data)
            perm = total[:n]
            assert sorted(perm) == data
            assert total[n:] == (perm * replicas)[:len(total) - n]


def test_epochs_reshuffle_and_seeds_agree():
    data = list(range(50))
    a = DistributedSampler(data, num_replicas=2, rank=0, seed=1)
    b = DistributedSampler(data, num_replicas=2, rank=0, seed=1)
    assert list(a) == list(b)
    e0 = list(a)
    a.set_epoch(1)
    assert list(a) != e0
    loader = DataLoader(torch.arange(50).tolist(), batch_size=5, sampler=b)
    assert sum(len(x) for x in loader) == 25


def test_bad_arguments():
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(list(range(4)), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="process group"):
        DistributedSampler(list(range(4)))


def test_importable_under_pytorchs_module_path():
    import deepbox.utils.data.distributed as mod

    assert mod.DistributedSampler is DistributedSampler

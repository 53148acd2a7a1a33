"""deepbox.data's dataset classes (TensorDataset, Subset, ConcatDataset, StackDataset, random_split)
beside torch.utils.data's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import deepbox
import deepbox.utils.data as dud
from tests.data.test_dataloader import tensor_pair


def test_random_split_lengths_match_torch():
    for lengths in ([3, 8], [0.3, 0.3, 0.4], [0.5, 0.5], [0.1] * 10):
        g = deepbox.Generator().manual_seed(0)
        parts = dud.random_split(range(11), lengths, generator=g)
        tparts = tud.random_split(range(11), lengths, generator=torch.Generator().manual_seed(0))
        assert [len(p) for p in parts] == [len(p) for p in tparts]
        assert sorted(i for p in parts for i in p) == list(range(11))
    a = [list(p) for p in dud.random_split(range(20), [5, 15], generator=deepbox.Generator().manual_seed(4))]
    b = [list(p) for p in dud.random_split(range(20), [5, 15], generator=deepbox.Generator().manual_seed(4))]
    assert a == b
    with pytest.raises(ValueError, match="Sum of input lengths"):
        dud.random_split(range(10), [3, 3])


def test_concat_subset_stack_match_torch():
    d = dud.ConcatDataset([range(3), range(10, 15)]) + range(20, 22)
    t = tud.ConcatDataset([range(3), range(10, 15)]) + range(20, 22)
    assert len(d) == len(t) and [d[i] for i in range(len(d))] == [t[i] for i in range(len(t))]
    assert d[-1] == t[-1]
    with pytest.raises(IndexError):
        d[len(d)]
    s = dud.Subset(range(10), [9, 2, 4])
    assert [s[i] for i in range(3)] == [9, 2, 4] and len(s) == 3
    sd = dud.StackDataset(a=range(3), b=range(3, 6))
    assert sd[1] == {"a": 1, "b": 4} and dud.StackDataset(range(2), range(2))[1] == (1, 1)


def test_tensor_dataset_fast_path_equals_per_sample():
    dds, _ = tensor_pair(30)
    batch = dds.__getitems__([4, 0, 29])
    assert len(batch) == 3
    np.testing.assert_array_equal(batch[0][0]._data, dds[4][0]._data)
    per_sample = dud.default_collate([dds[i] for i in [4, 0, 29]])
    fast = dud.default_collate(batch)
    for a, b in zip(per_sample, fast):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a._data, b._data)
    # a Subset of a TensorDataset passes the whole batch down
    sub = dud.Subset(dds, list(range(29, -1, -1)))
    xb, yb = next(iter(dud.DataLoader(sub, batch_size=5)))
    np.testing.assert_array_equal(yb._data, dds.tensors[1]._data[29:24:-1])
    with pytest.raises(IndexError, match="out of range"):
        dds.__getitems__([30])


def test_tensor_dataset_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="Size mismatch"):
        dud.TensorDataset(deepbox.zeros(3, 2), deepbox.zeros(4))


def test_alias_modules_are_one():
    from deepbox.utils.data.dataloader import default_collate

    import deepbox.data

    assert dud is deepbox.data and deepbox.utils.data is deepbox.data
    assert default_collate is deepbox.data.default_collate
    assert dud.DataLoader is deepbox.data.dataloader.DataLoader

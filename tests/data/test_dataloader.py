"""DataLoader, samplers and default_collate side by side with torch.utils.data on the same data."""
from __future__ import annotations

import os
import time
from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import deepbox
import deepbox.utils.data as dud

Point = namedtuple("Point", ["x", "y"])


# --------------------------------------------------------------------------- comparison


def assert_same(d, t, path="batch"):
    """deepbox output ``d`` has the structure, types, dtypes and values of torch output ``t``."""
    if isinstance(t, torch.Tensor):
        assert isinstance(d, deepbox.Tensor), f"{path}: {type(d).__name__} is not a Tensor"
        assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{path}: {d.dtype} vs {t.dtype}"
        np.testing.assert_array_equal(d._data, t.numpy(), err_msg=path)
    elif isinstance(t, dict):
        assert type(d) is type(t) and list(d) == list(t), f"{path}: {d!r} vs {t!r}"
        for k in t:
            assert_same(d[k], t[k], f"{path}[{k!r}]")
    elif isinstance(t, (list, tuple)):
        assert type(d) is type(t), f"{path}: {type(d).__name__} vs {type(t).__name__}"
        assert len(d) == len(t), f"{path}: length {len(d)} vs {len(t)}"
        for i, (a, b) in enumerate(zip(d, t)):
            assert_same(a, b, f"{path}[{i}]")
    else:
        assert type(d) is type(t) and d == t, f"{path}: {d!r} vs {t!r}"


def assert_loaders_same(dl, tl):
    db, tb = list(dl), list(tl)
    assert len(db) == len(tb) == len(dl) == len(tl)
    for i, (a, b) in enumerate(zip(db, tb)):
        assert_same(a, b, f"batch {i}")


# --------------------------------------------------------------------------- datasets


class NestedSamples:
    """Framework-free samples: arrays, numbers, strings, tuples, lists, dicts, named tuples."""

    def __init__(self, n=11):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, 3)).astype(np.float32)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {
            "x": self.x[i],
            "label": i % 3,
            "weight": float(i) / 2,
            "name": f"s{i}",
            "pair": (np.int64(i), np.arange(2, dtype=np.int64) + i),
            "lst": [i, np.float32(i) * 2],
            "pt": Point(np.float64(i), True),
            "flag": i % 2 == 0,
        }


class NestedDeepbox(NestedSamples, dud.Dataset):
    pass


class NestedTorch(NestedSamples, tud.Dataset):
    pass


def tensor_pair(n=23, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.integers(0, 5, size=n).astype(np.int64)
    return (dud.TensorDataset(deepbox.from_numpy(x), deepbox.from_numpy(y)),
            tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))


class TensorSamples:
    """Samples that are framework tensors: a 2x2 float tensor and an int tensor."""

    def __init__(self, lib, n=9):
        self.lib, self.n = lib, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        a = np.full((2, 2), i, dtype=np.float32)
        return self.lib.from_numpy(a), self.lib.tensor(i)


# --------------------------------------------------------------------------- batches without shuffling


@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (4, False), (4, True), (11, False), (20, True)])
def test_nested_batches_match_torch(batch_size, drop_last):
    dl = dud.DataLoader(NestedDeepbox(), batch_size=batch_size, drop_last=drop_last)
    tl = tud.DataLoader(NestedTorch(), batch_size=batch_size, drop_last=drop_last)
    assert_loaders_same(dl, tl)


@pytest.mark.parametrize("batch_size,drop_last", [(5, False), (5, True), (23, False), (64, False)])
def test_tensor_dataset_batches_match_torch(batch_size, drop_last):
    dds, tds = tensor_pair()
    assert_loaders_same(dud.DataLoader(dds, batch_size=batch_size, drop_last=drop_last),
                        tud.DataLoader(tds, batch_size=batch_size, drop_last=drop_last))


def test_tensor_samples_batches_match_torch():
    assert_loaders_same(dud.DataLoader(TensorSamples(deepbox), batch_size=4),
                        tud.DataLoader(TensorSamples(torch), batch_size=4))


def test_sampler_and_batch_sampler_match_torch():
    order = [5, 3, 10, 0, 7, 7, 1]
    assert_loaders_same(dud.DataLoader(NestedDeepbox(), batch_size=3, sampler=order),
                        tud.DataLoader(NestedTorch(), batch_size=3, sampler=order))
    batches = [[0, 2], [1, 3, 5], [4], [10, 9, 8, 7]]
    assert_loaders_same(dud.DataLoader(NestedDeepbox(), batch_sampler=batches),
                        tud.DataLoader(NestedTorch(), batch_sampler=batches))
    dds, tds = tensor_pair()
    assert_loaders_same(dud.DataLoader(dds, batch_sampler=batches), tud.DataLoader(tds, batch_sampler=batches))


def test_batch_size_none_converts_like_torch():
    assert_loaders_same(dud.DataLoader(NestedDeepbox(5), batch_size=None),
                        tud.DataLoader(NestedTorch(5), batch_size=None))
    dds, tds = tensor_pair(6)
    assert_loaders_same(dud.DataLoader(dds, batch_size=None), tud.DataLoader(tds, batch_size=None))


def test_custom_collate_fn_sees_samples():
    dds, tds = tensor_pair(10)
    fn = lambda batch: [tuple(s[1].item() for s in batch), len(batch)]  # noqa: E731
    assert list(dud.DataLoader(dds, batch_size=4, collate_fn=fn)) == list(tud.DataLoader(tds, batch_size=4,
                                                                                           collate_fn=fn))


@pytest.mark.parametrize("batch", [
    [1, 2, 3], [1.5, 2.0], [True, False], [1, 2.5], ["a", "b"], [b"a", b"b"],
    [np.float32(1), np.float32(2)], [np.int32(1), np.int32(4)], [np.bool_(True)], [np.array(1.0), np.array(2.0)],
    [np.zeros((2, 3), np.uint8), np.ones((2, 3), np.uint8)],
    [(1, "a"), (2, "b")], [[1, 2], [3, 4]], [Point(1, 2.0), Point(3, 4.0)],
    [{"a": {"b": [1, 2]}}, {"a": {"b": [3, 4]}}],
])
def test_default_collate_matches_torch(batch):
    assert_same(dud.default_collate(batch), tud.default_collate(batch))


def test_default_collate_tensors_and_errors():
    a = [np.arange(3.0), np.arange(3.0) + 1]
    assert_same(dud.default_collate([deepbox.from_numpy(x) for x in a]),
                tud.default_collate([torch.from_numpy(x) for x in a]))
    with pytest.raises(RuntimeError, match="equal size"):
        dud.default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        dud.default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="found"):
        dud.default_collate([object(), object()])
    with pytest.raises(TypeError):
        dud.default_collate([np.array(["a"]), np.array(["b"])])


def test_len_matches_torch():
    for bs, dl_ in [(4, False), (4, True), (1, False), (None, False)]:
        assert len(dud.DataLoader(NestedDeepbox(), batch_size=bs, drop_last=dl_)) == \
            len(tud.DataLoader(NestedTorch(), batch_size=bs, drop_last=dl_))


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize("kwargs", [
    dict(batch_sampler=[[0]], batch_size=2), dict(batch_sampler=[[0]], shuffle=True),
    dict(batch_sampler=[[0]], drop_last=True), dict(sampler=[0], shuffle=True),
    dict(batch_size=None, drop_last=True), dict(num_workers=-1), dict(timeout=-1),
    dict(prefetch_factor=2), dict(persistent_workers=True),
])
def test_bad_arguments_rejected_like_torch(kwargs):
    with pytest.raises(ValueError):
        tud.DataLoader(NestedTorch(), **kwargs)
    with pytest.raises(ValueError):
        dud.DataLoader(NestedDeepbox(), **kwargs)


def test_attributes_frozen_after_init():
    dl = dud.DataLoader(NestedDeepbox(), batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute"):
        dl.batch_size = 3


# --------------------------------------------------------------------------- shuffling and samplers


def test_shuffle_is_a_permutation_and_reproducible():
    dds, _ = tensor_pair(50)
    g = deepbox.Generator().manual_seed(3)
    ys = [np.concatenate([b[1]._data for b in dud.DataLoader(dds, batch_size=8, shuffle=True, generator=g)])
          for _ in range(2)]
    assert sorted(np.concatenate([b[1]._data for b in dud.DataLoader(dds, batch_size=50)])) == sorted(ys[0])
    assert not np.array_equal(ys[0], ys[1])  # a new order each epoch
    deepbox.manual_seed(7)
    a = [b[0]._data for b in dud.DataLoader(dds, batch_size=8, shuffle=True)]
    deepbox.manual_seed(7)
    b = [b[0]._data for b in dud.DataLoader(dds, batch_size=8, shuffle=True)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_samplers():
    data = range(10)
    g = deepbox.Generator().manual_seed(0)
    assert sorted(dud.RandomSampler(data, generator=g)) == list(range(10))
    idx = list(dud.RandomSampler(data, num_samples=25, generator=g))
    assert len(idx) == 25 and all(idx.count(i) in (2, 3) for i in range(10))
    idx = list(dud.RandomSampler(data, replacement=True, num_samples=100, generator=g))
    assert len(idx) == 100 and set(idx) <= set(range(10))
    assert sorted(dud.SubsetRandomSampler([7, 3, 9], generator=g)) == [3, 7, 9]
    w = dud.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], num_samples=200, generator=g)
    idx = list(w)
    assert len(idx) == 200 and set(idx) == {1, 3} and idx.count(3) > idx.count(1)
    assert sorted(dud.WeightedRandomSampler([1, 1, 0, 1], 3, replacement=False, generator=g)) == [0, 1, 3]
    assert list(dud.SequentialSampler(data)) == list(tud.SequentialSampler(data))
    for bs, drop in [(3, False), (3, True), (5, True)]:
        assert list(dud.BatchSampler(dud.SequentialSampler(data), bs, drop)) == \
            list(tud.BatchSampler(tud.SequentialSampler(data), bs, drop))
        assert list(dud.BatchSampler([9, 8, 7, 6], bs, drop)) == list(tud.BatchSampler([9, 8, 7, 6], bs, drop))
        assert len(dud.BatchSampler(range(10), bs, drop)) == len(tud.BatchSampler(range(10), bs, drop))


def test_sampler_errors():
    with pytest.raises(ValueError, match="num_samples"):
        dud.RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="batch_size"):
        dud.BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="weights"):
        dud.WeightedRandomSampler([-1.0, 2.0], 3)
    with pytest.raises(ValueError, match="without replacement"):
        dud.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


# --------------------------------------------------------------------------- iterable datasets


class RangeStream:
    """An iterable dataset of 0..n-1 split between workers by get_worker_info."""

    def __init__(self, n, info_fn):
        self.n, self.info_fn = n, info_fn

    def __iter__(self):
        info = self.info_fn()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


class RangeStreamDeepbox(RangeStream, dud.IterableDataset):
    def __init__(self, n):
        super().__init__(n, dud.get_worker_info)

    def __len__(self):
        return self.n


class RangeStreamTorch(RangeStream, tud.IterableDataset):
    def __init__(self, n):
        super().__init__(n, tud.get_worker_info)

    def __len__(self):
        return self.n


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("batch_size,drop_last", [(3, False), (3, True), (None, False)])
def test_iterable_dataset_matches_torch(num_workers, batch_size, drop_last):
    dl = dud.DataLoader(RangeStreamDeepbox(11), batch_size=batch_size, drop_last=drop_last, num_workers=num_workers)
    tl = tud.DataLoader(RangeStreamTorch(11), batch_size=batch_size, drop_last=drop_last, num_workers=num_workers)
    db, tb = list(dl), list(tl)
    assert len(db) == len(tb)
    for a, b in zip(db, tb):
        assert_same(a, b)
    assert len(dl) == len(tl)
    with pytest.raises(ValueError, match="shuffle"):
        dud.DataLoader(RangeStreamDeepbox(3), shuffle=True)


# --------------------------------------------------------------------------- workers


class WorkerProbe(dud.Dataset):
    """Reports which worker fetched each sample and a draw from deepbox's default generator."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        info = dud.get_worker_info()
        return {"i": i, "worker": -1 if info is None else info.id, "pid": os.getpid(),
                "draw": float(deepbox.rand(1).item())}


class FailingDataset(dud.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 7:
            raise ValueError(f"sample {i} is broken on purpose")
        return i


class SlowDataset(dud.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(3)
        return i


def test_workers_give_the_same_batches_as_no_workers():
    assert_loaders_same(dud.DataLoader(NestedDeepbox(), batch_size=3, num_workers=2),
                        tud.DataLoader(NestedTorch(), batch_size=3))
    dds, tds = tensor_pair(37)
    assert_loaders_same(dud.DataLoader(dds, batch_size=5, num_workers=2, prefetch_factor=1),
                        tud.DataLoader(tds, batch_size=5))
    # shuffled: the same generator state gives the same order with or without workers
    one = [b[1]._data for b in dud.DataLoader(dds, batch_size=5, shuffle=True, num_workers=0,
                                               generator=deepbox.Generator().manual_seed(11))]
    two = [b[1]._data for b in dud.DataLoader(dds, batch_size=5, shuffle=True, num_workers=2,
                                               generator=deepbox.Generator().manual_seed(11))]
    assert len(one) == len(two) == 8
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_worker_seeding_is_deterministic_and_per_worker():
    calls = []

    def run():
        deepbox.manual_seed(123)
        return list(dud.DataLoader(WorkerProbe(), batch_size=2, num_workers=2,
                                   worker_init_fn=lambda wid: calls.append(wid)))

    a, b = run(), run()
    assert [batch["worker"].tolist() for batch in a] == [[0, 0], [1, 1]] * 3
    assert [batch["i"].tolist() for batch in a] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]
    draws_a = np.concatenate([x["draw"]._data for x in a])
    draws_b = np.concatenate([x["draw"]._data for x in b])
    np.testing.assert_array_equal(draws_a, draws_b)  # reproducible under manual_seed
    assert draws_a[0] != draws_a[2]  # the two workers draw different streams
    assert len({int(p) for x in a for p in x["pid"]._data}) == 2
    assert os.getpid() not in {int(p) for x in a for p in x["pid"]._data}


def test_worker_exception_carries_the_worker_traceback():
    dl = dud.DataLoader(FailingDataset(), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as info:
        list(dl)
    msg = str(info.value)
    assert "Caught ValueError in DataLoader worker process 1" in msg
    assert "sample 7 is broken on purpose" in msg and "__getitem__" in msg and "Traceback" in msg


def test_worker_init_fn_exception_is_raised():
    def bad_init(worker_id):
        raise KeyError(f"init of worker {worker_id}")

    with pytest.raises(KeyError, match="init of worker"):
        list(dud.DataLoader(NestedDeepbox(), batch_size=4, num_workers=2, worker_init_fn=bad_init))


def test_persistent_workers_keep_processes_across_epochs():
    dl = dud.DataLoader(WorkerProbe(), batch_size=3, num_workers=2, persistent_workers=True)
    pids = []
    for _ in range(2):
        epoch = list(dl)
        assert [x["i"].tolist() for x in epoch] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
        pids.append({int(p) for x in epoch for p in x["pid"]._data})
    assert pids[0] == pids[1] and len(pids[0]) == 2
    # an epoch abandoned half way does not leak its batches into the next one
    it = iter(dl)
    next(it)
    assert [x["i"].tolist() for x in dl] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    dl._iterator._shutdown_workers()


class DyingDataset(dud.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        os._exit(3)


def test_dead_worker_is_reported():
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(dud.DataLoader(DyingDataset(), batch_size=1, num_workers=1))


def test_timeout_raises():
    dl = dud.DataLoader(SlowDataset(), batch_size=1, num_workers=1, timeout=0.5)
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        next(iter(dl))


def test_spawn_context_gives_the_same_batches():
    dds, tds = tensor_pair(20)
    assert_loaders_same(dud.DataLoader(dds, batch_size=6, num_workers=2, multiprocessing_context="spawn"),
                        tud.DataLoader(tds, batch_size=6))


class KilledDataset(dud.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would


def test_a_worker_killed_by_a_signal_is_reported():
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(dud.DataLoader(KilledDataset(), batch_size=1, num_workers=2))

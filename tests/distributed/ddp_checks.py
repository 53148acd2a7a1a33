"""DistributedDataParallel, SyncBatchNorm and DistributedSampler on 2 ranks (see mpi_jobs.py), in float64.

The reference for DDP is one process training the same model on the whole batch (each rank
computes it locally); for SyncBatchNorm it is PyTorch's BatchNorm2d on the whole batch.
"""
from __future__ import annotations

import numpy as np

import deepbox
import deepbox.distributed as dist
import deepbox.nn as nn
import deepbox.nn.functional as F
from deepbox.nn.parallel import DistributedDataParallel as DDP

N_ALL = 128


def batch(n=N_ALL, d=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return deepbox.tensor(rng.standard_normal((n, d))), deepbox.tensor(rng.integers(0, classes, n))


def mlp(seed):
    deepbox.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3)).double()


def max_diff(a, b):
    return max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max()) for p, q in zip(a, b))


def same_on_all_ranks(params):
    for p in params:
        got = [deepbox.zeros_like(p.detach()) for _ in range(dist.get_world_size())]
        dist.all_gather(got, p.detach().clone())
        for g in got[1:]:
            np.testing.assert_array_equal(g.numpy(), got[0].numpy())


def _train_equivalence(rank, size, make_opt, steps=5):
    X, y = batch()
    per = N_ALL // size
    xs, ys = X[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]
    model = mlp(seed=10 + rank)               # ranks start different: DDP must copy rank 0's weights
    ddp = DDP(model, bucket_cap_mb=0.001)     # ~1 KB buckets: several buckets, started from the hooks
    assert len(ddp._buckets) > 2
    ref = mlp(seed=10)                        # one process, whole batch, rank 0's initial weights
    opt, ref_opt = make_opt(ddp.parameters()), make_opt(ref.parameters())
    errs = []
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(ddp(xs), ys).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(ref(X), y).backward()
        ref_opt.step()
        errs.append(max_diff(model.parameters(), ref.parameters()))
    assert max(errs) < 1e-12, errs
    same_on_all_ranks(model.parameters())
    return {"max_abs_weight_error": max(errs)}


def check_ddp_sgd_momentum_equals_one_process(rank, size):
    return _train_equivalence(rank, size, lambda ps: deepbox.optim.SGD(ps, lr=0.1, momentum=0.9))


def check_ddp_adam_equals_one_process(rank, size):
    return _train_equivalence(rank, size, lambda ps: deepbox.optim.Adam(ps, lr=0.01))


def check_ddp_state_dict_and_module(rank, size):
    model = mlp(seed=rank)
    ddp = DDP(model)
    assert ddp.module is model
    keys = list(ddp.state_dict())
    assert keys and all(k.startswith("module.") for k in keys), keys
    assert [k[len("module."):] for k in keys] == list(model.state_dict())
    same_on_all_ranks(model.parameters())


def check_no_sync_accumulation_equals_one_big_step(rank, size):
    X, y = batch()
    per = N_ALL // size
    xs, ys = X[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]
    model = mlp(seed=3 + rank)
    ddp = DDP(model, bucket_cap_mb=0.001)
    opt = deepbox.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    ref = mlp(seed=3)
    ref_opt = deepbox.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    half = per // 2
    errs = []
    for _ in range(3):
        opt.zero_grad()
        with ddp.no_sync():
            (F.cross_entropy(ddp(xs[:half]), ys[:half]) / 2).backward()
        local = [p.grad.numpy().copy() for p in model.parameters()]
        other = [np.zeros_like(g) for g in local]
        # no communication happened: the two ranks' accumulated gradients differ
        g0 = deepbox.tensor(local[0])
        dist.broadcast(g0, src=0)
        if rank == 1:
            assert not np.allclose(g0.numpy(), local[0])
        del other
        (F.cross_entropy(ddp(xs[half:]), ys[half:]) / 2).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(ref(X), y).backward()
        ref_opt.step()
        errs.append(max_diff(model.parameters(), ref.parameters()))
    assert max(errs) < 1e-12, errs
    return {"max_abs_weight_error": max(errs)}


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 2)
        self.b = nn.Linear(4, 2)

    def forward(self, x, use_b):
        return self.a(x) + self.b(x) if use_b else self.a(x)


def check_find_unused_parameters(rank, size):
    deepbox.manual_seed(0)
    model = TwoHeads().double()
    ddp = DDP(model, find_unused_parameters=True)
    x = deepbox.tensor(np.random.default_rng(rank).standard_normal((5, 4)))
    for _ in range(2):                        # twice: the reducer resets between iterations
        model.zero_grad()
        ddp(x, use_b=(rank == 0)).sum().backward()
    # head b is used on rank 0 only: its gradient is rank 0's halved (rank 1 counts as zero)
    x0 = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_allclose(model.b.weight.grad.numpy(), np.tile(x0.sum(0), (2, 1)) / size, rtol=1e-12)
    xs = [np.random.default_rng(r).standard_normal((5, 4)) for r in range(size)]
    np.testing.assert_allclose(model.a.weight.grad.numpy(), np.tile(sum(x.sum(0) for x in xs) / size, (2, 1)),
                               rtol=1e-12)


def check_broadcast_buffers(rank, size):
    deepbox.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double()
    ddp = DDP(model)
    x = deepbox.tensor(np.random.default_rng(rank).standard_normal((6, 4)))
    ddp(x).sum().backward()                   # each rank updates its running stats from its own batch
    mine = model[1].running_mean.numpy().copy()
    theirs = deepbox.tensor(mine.copy())
    dist.broadcast(theirs, src=0)
    if rank == 1:
        assert not np.allclose(mine, theirs.numpy())
    model.eval()
    ddp(x)                                    # the forward starts by copying rank 0's buffers
    np.testing.assert_array_equal(model[1].running_mean.numpy(), theirs.numpy())


def check_sync_batchnorm_equals_batchnorm_on_whole_batch(rank, size):
    import torch

    rng = np.random.default_rng(5)
    x_all = rng.standard_normal((8, 3, 4, 4)) * 2 + 1
    c_all = rng.standard_normal((8, 3, 4, 4))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    per = 8 // size
    sl = slice(rank * per, (rank + 1) * per)

    tb = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    with torch.no_grad():
        tb.weight.copy_(torch.tensor(w))
        tb.bias.copy_(torch.tensor(b))
    tx = torch.tensor(x_all, requires_grad=True)
    ty = tb(tx)
    (ty * torch.tensor(c_all)).sum().backward()

    sbn = nn.SyncBatchNorm(3, momentum=0.3).double()
    with deepbox.no_grad():
        sbn.weight.copy_(deepbox.tensor(w))
        sbn.bias.copy_(deepbox.tensor(b))
    x = deepbox.tensor(x_all[sl], requires_grad=True)
    y = sbn(x)
    (y * deepbox.tensor(c_all[sl])).sum().backward()
    errs = {
        "output": float(np.abs(y.detach().numpy() - ty.detach().numpy()[sl]).max()),
        "input_grad": float(np.abs(x.grad.numpy() - tx.grad.numpy()[sl]).max()),
        "running_mean": float(np.abs(sbn.running_mean.numpy() - tb.running_mean.numpy()).max()),
        "running_var": float(np.abs(sbn.running_var.numpy() - tb.running_var.numpy()).max()),
    }
    for name, p, tp in (("weight_grad", sbn.weight, tb.weight), ("bias_grad", sbn.bias, tb.bias)):
        g = p.grad.clone()
        dist.all_reduce(g)                    # the loss is the sum of the ranks' losses
        errs[name] = float(np.abs(g.numpy() - tp.grad.numpy()).max())
    assert max(errs.values()) < 1e-12, errs
    assert int(sbn.num_batches_tracked) == 1
    sbn.eval()                                # eval: plain batch norm with the (global) running stats
    tb.eval()
    np.testing.assert_allclose(sbn(deepbox.tensor(x_all[sl])).detach().numpy(),
                               tb(torch.tensor(x_all)).detach().numpy()[sl], rtol=1e-12, atol=1e-12)
    return errs


def small_cnn(seed):
    deepbox.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3)).double()


def check_ddp_with_sync_batchnorm_equals_one_process(rank, size):
    rng = np.random.default_rng(7)
    X = deepbox.tensor(rng.standard_normal((16, 1, 6, 6)))
    y = deepbox.tensor(rng.integers(0, 3, 16))
    per = 16 // size
    model = nn.SyncBatchNorm.convert_sync_batchnorm(small_cnn(seed=20 + rank))
    assert isinstance(model[1], nn.SyncBatchNorm)
    ddp = DDP(model)
    ref = small_cnn(seed=20)
    opt = deepbox.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    ref_opt = deepbox.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    errs = []
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(ddp(X[rank * per:(rank + 1) * per]), y[rank * per:(rank + 1) * per]).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(ref(X), y).backward()
        ref_opt.step()
        errs.append(max(max_diff(model.parameters(), ref.parameters()),
                        max_diff(model.buffers(), ref.buffers())))
    assert max(errs) < 1e-12, errs
    return {"max_abs_error": max(errs)}


def check_distributed_sampler_partitions(rank, size):
    from deepbox.utils.data import DistributedSampler

    data = list(range(11))
    for drop_last in (False, True):
        s = DistributedSampler(data, shuffle=True, seed=3, drop_last=drop_last)
        assert s.num_replicas == size and s.rank == rank
        for epoch in (0, 1):
            s.set_epoch(epoch)
            mine = list(s)
            parts = [None] * size
            dist.all_gather_object(parts, mine)
            assert all(len(p) == len(s) for p in parts)
            union = sum(parts, [])
            if drop_last:
                assert len(union) == 10 and len(set(union)) == 10
            else:
                assert len(union) == 12 and set(union) == set(data)   # one index repeated as padding
        s.set_epoch(0)
        e0 = list(s)
        s.set_epoch(1)
        assert list(s) != e0


def check_buckets_start_during_backward(rank, size):
    from deepbox.distributed import collectives

    events = []
    real = collectives.start_allreduce

    def logged(pg, arr, average=False):
        events.append("bucket")
        return real(pg, arr, average)

    model = mlp(seed=0)
    ddp = DDP(model, bucket_cap_mb=0.001)
    X, y = batch(16)
    collectives.start_allreduce = logged
    try:
        h = model[0](X)                        # the first layer's output: its gradient arrives last
        h.register_hook(lambda g: events.append("first layer"))
        out = ddp.module[1:](h)
        ddp._reset()
        ddp._armed = True                      # as DDP's forward leaves it
        F.cross_entropy(out, y).backward()
    finally:
        collectives.start_allreduce = real
    n = len(ddp._buckets)
    assert events.count("bucket") == n and n > 2, events
    # communication overlaps backward: every bucket without a first-layer parameter starts before backward
    # reaches the first layer
    first = {id(p) for p in model[0].parameters()}
    later = sum(1 for b in ddp._buckets if not any(id(p) in first for p in b.params))
    assert later >= 2 and events.index("first layer") == later, events


def check_trainer_sums_loss_and_metrics_over_ranks(rank, size):
    from deepbox.train import Accuracy, ConfusionMatrix, Trainer

    X, y = batch(40)
    model = mlp(seed=1)
    ref = Trainer(mlp(seed=1), deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                  metrics=[Accuracy()], verbose=0, distributed=False)
    want = ref.evaluate((X, y), metrics=[Accuracy(), ConfusionMatrix(3)])
    trainer = Trainer(DDP(model), deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                      metrics=[Accuracy()], verbose=1)
    assert trainer.distributed and trainer.rank == rank and trainer.world_size == size
    assert trainer.verbose == (1 if rank == 0 else 0) and trainer.is_main_process == (rank == 0)
    shard = slice(rank * 20, (rank + 1) * 20)
    got = trainer.evaluate((X[shard], y[shard]), metrics=[Accuracy(), ConfusionMatrix(3)])
    assert abs(got["loss"] - want["loss"]) < 1e-12 and got["accuracy"] == want["accuracy"]
    np.testing.assert_array_equal(got["confusion_matrix"], want["confusion_matrix"])
    assert "module." not in "".join(trainer.state_dict()["model"])

"""Convolution benchmark: deepbox vs PyTorch on the same work, in the same run, with ratios.

Times forward+backward of every layer shape of LeNet-5, of the BN CNN
(2x(conv3x3 + BN + ReLU + pool) 32/64 channels + FC 3136-128-10) and of a
CIFAR ResNet basic block, then a full training step (forward, cross-entropy,
backward, Adam) of LeNet-5 and of the BN CNN. Batch 128, float32, 28x28 inputs
(32x32 for the ResNet block); PyTorch runs with 2 threads. The two frameworks
alternate rep by rep so that load from other processes hits both alike; each
line reports medians and the ratio deepbox / PyTorch (below 1 means deepbox is
faster).

    python benchmarks/bench_conv.py            # all
    python benchmarks/bench_conv.py --reps 5 --only step
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
import deepbox  # noqa: E402

torch.set_num_threads(2)


def lenet5(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def bn_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def basic_block(nn, F, c):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)
    return Block()


def layer_cases():
    """(name, input shape, input needs grad, builder(nn) -> module)."""
    return [
        ("lenet conv1 1->6 5x5 p2 28x28", (128, 1, 28, 28), False, lambda nn: nn.Conv2d(1, 6, 5, padding=2)),
        ("lenet pool1 2x2 6x28x28", (128, 6, 28, 28), True, lambda nn: nn.MaxPool2d(2)),
        ("lenet conv2 6->16 5x5 14x14", (128, 6, 14, 14), True, lambda nn: nn.Conv2d(6, 16, 5)),
        ("lenet pool2 2x2 16x10x10", (128, 16, 10, 10), True, lambda nn: nn.MaxPool2d(2)),
        ("bncnn conv1 1->32 3x3 28x28", (128, 1, 28, 28), False, lambda nn: nn.Conv2d(1, 32, 3, padding=1)),
        ("bncnn bn1 32x28x28", (128, 32, 28, 28), True, lambda nn: nn.BatchNorm2d(32)),
        ("bncnn pool1 2x2 32x28x28", (128, 32, 28, 28), True, lambda nn: nn.MaxPool2d(2)),
        ("bncnn conv2 32->64 3x3 14x14", (128, 32, 14, 14), True, lambda nn: nn.Conv2d(32, 64, 3, padding=1)),
        ("bncnn bn2 64x14x14", (128, 64, 14, 14), True, lambda nn: nn.BatchNorm2d(64)),
        ("bncnn pool2 2x2 64x14x14", (128, 64, 14, 14), True, lambda nn: nn.MaxPool2d(2)),
        ("resnet conv 16->16 3x3 32x32", (128, 16, 32, 32), True,
         lambda nn: nn.Conv2d(16, 16, 3, padding=1, bias=False)),
        ("resnet conv 64->64 3x3 8x8", (128, 64, 8, 8), True,
         lambda nn: nn.Conv2d(64, 64, 3, padding=1, bias=False)),
        ("resnet block 16ch 32x32", (128, 16, 32, 32), True,
         lambda nn: basic_block(nn, deepbox.nn.functional if nn is deepbox.nn else torch.nn.functional, 16)),
    ]


def _median_pair(f_db, f_pt, reps, warmup=2):
    for _ in range(warmup):
        f_db()
        f_pt()
    td, tp = [], []
    for _ in range(reps):
        t = time.perf_counter()
        f_db()
        td.append(time.perf_counter() - t)
        t = time.perf_counter()
        f_pt()
        tp.append(time.perf_counter() - t)
    return statistics.median(td) * 1e3, statistics.median(tp) * 1e3


def _layer_step(lib, module, x, g):
    def step():
        for p in module.parameters():
            p.grad = None
        if x.requires_grad:
            x.grad = None
        y = module(x)
        y.backward(g)
    return step


def bench_layers(reps):
    rng = np.random.default_rng(0)
    rows = []
    for name, shape, need_grad, build in layer_cases():
        xa = rng.standard_normal(shape).astype(np.float32)
        mt, md = build(torch.nn), build(deepbox.nn)
        md.load_state_dict({k: v.detach().numpy().copy() for k, v in mt.state_dict().items()})
        xt = torch.tensor(xa, requires_grad=need_grad)
        xd = deepbox.tensor(xa, requires_grad=need_grad)
        with torch.no_grad():
            out_shape = mt(xt).shape
        ga = rng.standard_normal(tuple(out_shape)).astype(np.float32)
        td, tp = _median_pair(_layer_step(deepbox, md, xd, deepbox.tensor(ga)),
                              _layer_step(torch, mt, xt, torch.tensor(ga)), reps)
        rows.append((name, td, tp))
        print(f"{name:36s} deepbox {td:8.2f} ms   torch {tp:8.2f} ms   ratio {td / tp:5.2f}", flush=True)
    return rows


def _train_step(lib, model, opt, x, y):
    F = lib.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def bench_steps(reps):
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
    ya = rng.integers(0, 10, 128)
    rows = []
    for name, build in (("LeNet-5 train step", lenet5), ("BN-CNN train step", bn_cnn)):
        mt, md = build(torch.nn), build(deepbox.nn)
        md.load_state_dict({k: v.detach().numpy().copy() for k, v in mt.state_dict().items()})
        ot = torch.optim.Adam(mt.parameters(), lr=1e-3)
        od = deepbox.optim.Adam(md.parameters(), lr=1e-3)
        td, tp = _median_pair(_train_step(deepbox, md, od, deepbox.tensor(xa), deepbox.tensor(ya)),
                              _train_step(torch, mt, ot, torch.tensor(xa), torch.tensor(ya)), reps)
        rows.append((name, td, tp))
        print(f"{name:36s} deepbox {td:8.2f} ms   torch {tp:8.2f} ms   ratio {td / tp:5.2f}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per case (median reported)")
    ap.add_argument("--only", choices=["layers", "step"], default=None)
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for PyTorch and for NumPy's BLAS (1 gives steadier ratios on a busy machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info
        blas = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')} {i['num_threads']} threads"
                for i in threadpool_info() if i["user_api"] == "blas"]
    except ImportError:
        blas = ["threadpoolctl not installed"]
    print(f"numpy {np.__version__} ({'; '.join(blas)}), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), float32, batch 128, median of {args.reps}")
    if args.only != "step":
        bench_layers(args.reps)
    if args.only != "layers":
        bench_steps(args.reps)


if __name__ == "__main__":
    main()

"""Convolution benchmark: deepbox vs PyTorch on the same work, in the same run, with ratios.

Times forward+backward of every layer shape of LeNet-5, of the BN CNN
(2x(conv3x3 + BN + ReLU + pool) 32/64 channels + FC 3136-128-10) and of a
CIFAR ResNet basic block, then a full training step (forward, cross-entropy,
backward, Adam) of LeNet-5 and of the BN CNN. Batch 128, float32, 28x28 inputs
(32x32 for the ResNet block), the same thread count for both frameworks.

Each framework runs in processes of its own, deepbox, PyTorch, deepbox, PyTorch
(two rounds; each line reports the lower of the two rounds' medians and the ratio
deepbox / PyTorch: below 1 means deepbox is faster). Measured in one process,
PyTorch's OpenMP threads keep spinning after each of its calls and take the
second core from deepbox's next one (LeNet-5's conv2 then looked 1.6x slower).
Each layer gets its input and output gradient in the memory layout its own
framework's networks produce: NCHW for PyTorch, and for deepbox the NCHW view of
an NHWC array, which is what its convolutions, pooling and batch norm return.

    python benchmarks/bench_conv.py            # all
    python benchmarks/bench_conv.py --reps 5 --only step
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        ("lenet conv1 1->6 5x5 p2 28x28", (128, 1, 28, 28), False, lambda nn, F: nn.Conv2d(1, 6, 5, padding=2)),
        ("lenet pool1 2x2 6x28x28", (128, 6, 28, 28), True, lambda nn, F: nn.MaxPool2d(2)),
        ("lenet conv2 6->16 5x5 14x14", (128, 6, 14, 14), True, lambda nn, F: nn.Conv2d(6, 16, 5)),
        ("lenet pool2 2x2 16x10x10", (128, 16, 10, 10), True, lambda nn, F: nn.MaxPool2d(2)),
        ("bncnn conv1 1->32 3x3 28x28", (128, 1, 28, 28), False, lambda nn, F: nn.Conv2d(1, 32, 3, padding=1)),
        ("bncnn bn1 32x28x28", (128, 32, 28, 28), True, lambda nn, F: nn.BatchNorm2d(32)),
        ("bncnn pool1 2x2 32x28x28", (128, 32, 28, 28), True, lambda nn, F: nn.MaxPool2d(2)),
        ("bncnn conv2 32->64 3x3 14x14", (128, 32, 14, 14), True, lambda nn, F: nn.Conv2d(32, 64, 3, padding=1)),
        ("bncnn bn2 64x14x14", (128, 64, 14, 14), True, lambda nn, F: nn.BatchNorm2d(64)),
        ("bncnn pool2 2x2 64x14x14", (128, 64, 14, 14), True, lambda nn, F: nn.MaxPool2d(2)),
        ("resnet conv 16->16 3x3 32x32", (128, 16, 32, 32), True,
         lambda nn, F: nn.Conv2d(16, 16, 3, padding=1, bias=False)),
        ("resnet conv 64->64 3x3 8x8", (128, 64, 8, 8), True,
         lambda nn, F: nn.Conv2d(64, 64, 3, padding=1, bias=False)),
        ("resnet block 16ch 32x32", (128, 16, 32, 32), True,
         lambda nn, F: basic_block(nn, F, 16)),
    ]


def _timed(f, reps, warmup=2):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def _channels_last(a):
    """``a`` (N, C, H, W) as the NCHW view of an NHWC array."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


def _layer_step(module, x, g):
    def step():
        for p in module.parameters():
            p.grad = None
        if x.requires_grad:
            x.grad = None
        y = module(x)
        y.backward(g)
    return step


def _train_step(lib, model, opt, x, y):
    F = lib.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def run_framework(name, only, reps):
    """This process's framework on every case: ``{case: median ms}``."""
    if name == "torch":
        import torch as lib
        as_tensor = lib.from_numpy
        layout = np.ascontiguousarray
    else:
        import deepbox as lib
        import deepbox.nn  # noqa: F401
        import deepbox.optim  # noqa: F401
        as_tensor = lib.from_numpy
        layout = _channels_last
    rng = np.random.default_rng(0)
    lib.manual_seed(0)
    out = {}
    if only != "step":
        for case, shape, need_grad, build in layer_cases():
            xa = rng.standard_normal(shape).astype(np.float32)
            module = build(lib.nn, lib.nn.functional)
            x = as_tensor(layout(xa))
            if need_grad:
                x.requires_grad_(True)
            with lib.no_grad():
                out_shape = tuple(module(x).shape)
            g = as_tensor(layout(rng.standard_normal(out_shape).astype(np.float32)))
            out[case] = _timed(_layer_step(module, x, g), reps)
    if only != "layers":
        xa = rng.standard_normal((128, 1, 28, 28)).astype(np.float32)
        ya = rng.integers(0, 10, 128)
        for case, build in (("LeNet-5 train step", lenet5), ("BN-CNN train step", bn_cnn)):
            model = build(lib.nn)
            opt = lib.optim.Adam(model.parameters(), lr=1e-3)
            out[case] = _timed(_train_step(lib, model, opt, as_tensor(xa), as_tensor(ya)), reps)
    return out


def _header(threads):
    import torch
    try:
        from threadpoolctl import threadpool_info
        blas = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')}"
                for i in threadpool_info() if i["user_api"] == "blas"]
    except ImportError:
        blas = ["threadpoolctl not installed"]
    import deepbox
    from deepbox import kernels
    kern = "numba kernels" if kernels.kernels() is not None else "NumPy only"
    return (f"numpy {np.__version__} ({'; '.join(blas)}), deepbox {deepbox.__version__} ({kern}), "
            f"torch {torch.__version__}; {threads} threads each, float32, batch 128")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per case (median reported)")
    ap.add_argument("--only", choices=["layers", "step"], default=None)
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for PyTorch, for deepbox and for NumPy's BLAS")
    ap.add_argument("--rounds", type=int, default=2, help="processes per framework, alternating")
    ap.add_argument("--framework", choices=["deepbox", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.framework:                      # a child: one framework, JSON on stdout
        import numpy  # noqa: F401  (load OpenBLAS first, so that the limit below reaches it)
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(args.threads, user_api="blas")
        except ImportError:
            pass
        if args.framework == "torch":
            import torch
            torch.set_num_threads(args.threads)
        else:
            sys.path.insert(0, ROOT)
            import deepbox
            deepbox.set_num_threads(args.threads)
        print(json.dumps(run_framework(args.framework, args.only, args.reps)))
        return
    sys.path.insert(0, ROOT)
    print(_header(args.threads) + f", lower of {args.rounds} process medians of {args.reps}", flush=True)
    results = {"deepbox": [], "torch": []}
    for _ in range(args.rounds):
        for fw in ("deepbox", "torch"):
            cmd = [sys.executable, os.path.abspath(__file__), "--framework", fw, "--reps", str(args.reps),
                   "--threads", str(args.threads)] + (["--only", args.only] if args.only else [])
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                sys.exit(f"bench_conv: the {fw} process failed:\n{done.stderr}")
            results[fw].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for case in results["deepbox"][0]:
        td = min(r[case] for r in results["deepbox"])
        tp = min(r[case] for r in results["torch"])
        print(f"{case:36s} deepbox {td:8.2f} ms   torch {tp:8.2f} ms   ratio {td / tp:5.2f}", flush=True)


if __name__ == "__main__":
    main()

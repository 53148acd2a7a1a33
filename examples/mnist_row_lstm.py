"""Sequence classification: an LSTM reads each MNIST digit row by row (28 steps of 28 pixels).

    python examples/mnist_row_lstm.py                 # 12 epochs, a few minutes on 2 cores
    python examples/mnist_row_lstm.py --quick         # a few seconds: a smoke test

Data: mnist-10k.npz (10,000 real MNIST digits): the first 8,000 train, the last 2,000 test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox.models.sequence import RowLSTM  # noqa: E402


def find_mnist(path=None) -> Path:
    repo = Path(__file__).resolve().parents[1]
    cands = [Path(path)] if path else []
    if os.environ.get("DEEPBOX_DATA"):
        cands.append(Path(os.environ["DEEPBOX_DATA"]) / "mnist-10k.npz")
    cands += [repo.parent / "shared" / "data" / "mnist-10k.npz", repo / "data" / "mnist-10k.npz"]
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError("mnist-10k.npz not found; looked in: " + ", ".join(map(str, cands)))


def accuracy(model, x, y, batch=500):
    model.eval()
    correct = 0
    with deepbox.no_grad():
        for s in range(0, len(x), batch):
            correct += int((model(deepbox.tensor(x[s : s + batch])).argmax(-1)._data == y[s : s + batch]).sum())
    model.train()
    return correct / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="path of mnist-10k.npz")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="500 training digits, 1 epoch: a smoke test")
    args = ap.parse_args(argv)
    deepbox.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    d = np.load(find_mnist(args.data))
    x = (d["images"].astype(np.float32) / 255.0 - 0.1307) / 0.3081
    y = d["labels"].astype(np.int64)
    xtr, ytr, xte, yte = x[:8000], y[:8000], x[8000:], y[8000:]
    if args.quick:
        xtr, ytr, xte, yte = xtr[:500], ytr[:500], xte[:500], yte[:500]
        args.epochs, args.hidden = 1, 32
    model = RowLSTM(28, args.hidden)
    opt = deepbox.optim.Adam(model.parameters(), lr=args.lr)
    sched = deepbox.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = rng.permutation(len(xtr))
        total = 0.0
        for s in range(0, len(xtr), args.batch_size):
            idx = perm[s : s + args.batch_size]
            loss = F.cross_entropy(model(deepbox.tensor(xtr[idx])), deepbox.tensor(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            deepbox.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        acc = accuracy(model, xte, yte)
        print(f"epoch {epoch + 1:2d}  {time.perf_counter() - t0:6.1f}s  train loss {total / len(xtr):.4f}  "
              f"test accuracy {acc:.4f}", flush=True)
    acc = accuracy(model, xte, yte)
    print(f"final test accuracy {acc:.4f} on {len(xte)} digits after {time.perf_counter() - t0:.1f}s")
    return {"test_accuracy": acc, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    main()

"""An MLP with dropout, batch norm, AdamW and a cosine learning-rate schedule, on real digits.

What it demonstrates (lectures 6-8 in one page of PyTorch-style code): the nn toolkit's pieces
assembled by hand, with no Trainer: ``nn.Sequential`` of ``Linear``/``BatchNorm1d``/``ReLU``/
``Dropout``, ``optim.AdamW`` with decoupled weight decay, ``lr_scheduler.CosineAnnealingLR``
stepped once per epoch, ``model.train()``/``model.eval()`` switching dropout and batch norm, and a
checkpoint written with ``deepbox.save`` and read back with ``deepbox.load``.

Data: MNIST-10k (../shared/data/mnist-10k.npz): the first 8,000 digits train, the last 2,000 test.

    python examples/mlp_regularised.py [--epochs 15] [--quick]
"""
from __future__ import annotations

import sys
import time

import numpy as np
from _course import finish, load_mnist10k, parser, setup

import deepbox as torch
import deepbox.nn as nn
import deepbox.nn.functional as F


def build(hidden=256, p=0.2):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(p),
        nn.Linear(hidden, hidden // 2), nn.BatchNorm1d(hidden // 2), nn.ReLU(), nn.Dropout(p),
        nn.Linear(hidden // 2, 10),
    )


def main(argv=None) -> dict:
    ap = parser("mlp_regularised", __doc__)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args(argv)
    out = setup(args, "mlp_regularised")
    n_train, n_test = (1000, 500) if args.quick else (8000, 2000)
    epochs = 3 if args.quick else args.epochs
    xtr, ytr, xte, yte = load_mnist10k(n_train, n_test)
    xtr, xte = torch.tensor(xtr.reshape(len(xtr), -1)), torch.tensor(xte.reshape(len(xte), -1))
    ytr, yte = torch.tensor(ytr), torch.tensor(yte)

    model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.tensor(rng.permutation(len(xtr)))
        total = 0.0
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1:2d}  lr {sched.get_last_lr()[0]:.5f}  train loss {total / len(xtr):.4f}  "
              f"test accuracy {acc:.4f}")
    seconds = time.perf_counter() - t0

    # the checkpoint round trip: a fresh model loaded from the file gives the same predictions
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, out / "mlp.safetensors")
    fresh = build()
    fresh.load_state_dict(torch.load(out / "mlp.safetensors")["model"])
    fresh.eval()
    with torch.no_grad():
        same = bool((fresh(xte).argmax(1) == model(xte).argmax(1)).all())
    print(f"test accuracy {acc:.4f} after {epochs} epochs in {seconds:.1f} s; reloaded checkpoint agrees: {same}")
    return finish(out, {"test_accuracy": acc, "epochs": epochs, "seconds": seconds, "reload_agrees": same})


if __name__ == "__main__":
    main(sys.argv[1:])

"""Transfer learning: LeNet-5 pre-trained on Fashion-MNIST, fine-tuned on 500 labelled digits.

What it demonstrates: features learnt on one image task (clothing) help another (digits) when
labels are scarce. LeNet-5 (``deepbox.models.lenet5``) is pre-trained on Fashion-MNIST; its
convolutional body (``features``) is then loaded into a fresh LeNet-5 whose head (the fully
connected ``classifier``) is replaced by a new one, with ``load_state_dict(strict=False)``
reporting the keys it left out. Fine-tuning runs in two phases: first only the new head trains
(the body frozen with ``requires_grad_(False)``), then everything is unfrozen and trains on.
The same network trained from scratch on the same 500 digits, with the same number of steps,
is the baseline. Digits come from MNIST-10k: the 500 labelled ones (50 per class) from the
first 8,000; the test set is the last 2,000.

    python examples/transfer_learning.py [--quick] [--out DIR] [--pretrain-epochs N] [--pretrain-size N]
        [--pretrained RUN_FOLDER]

The full run pre-trains for 2 epochs on the 60,000 Fashion-MNIST training images (the embedded
20,000-image subset when the full files are not installed); ``--quick`` pre-trains on 15,000
images and trains each digit model for 18 epochs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.models import lenet5  # noqa: E402
from examples._course import Timer, evaluate, finish, load_mnist10k, parser, setup, train_epoch  # noqa: E402

NAME = "transfer_learning"
BODY = "features"  # LeNet-5's convolutions and pooling; "classifier" is the head


def load_fashion_full(n: int | None):
    """Fashion-MNIST training and test images as float32 (N, 1, 28, 28) in [0, 1] and int64 labels."""
    from deepbox.vision.datasets import load_dataset

    tr, te = load_dataset("fashion-mnist", train=True), load_dataset("fashion-mnist", train=False)

    def arrays(ds, k):
        x = np.asarray(ds.data._data)[:k, None].astype(np.float32) / 255.0
        return x, np.asarray(ds.targets._data, dtype=np.int64)[:k]

    return (*arrays(tr, n), *arrays(te, 2000)), tr.source


def labelled_subset(y: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` examples of each class (in the data's order)."""
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fit(model, x, y, xte, yte, epochs: int, lr: float, batch_size: int, rng, label: str) -> float:
    """Adam over the parameters that require a gradient, cosine schedule; returns the test accuracy."""
    opt = deepbox.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = deepbox.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(epochs):
        train_epoch(model, opt, x, y, batch_size, rng)
        sched.step()
    acc = evaluate(model, xte, yte)[1]
    print(f"  {label}: {epochs} epochs, {trainable(model):,} trainable parameters -> test accuracy {acc:.4f}")
    return acc


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--pretrain-size", type=int, default=None, help="Fashion-MNIST training images (default all)")
    ap.add_argument("--labels-per-class", type=int, default=50, help="labelled digits per class (default 50: 500)")
    ap.add_argument("--head-epochs", type=int, default=10)
    ap.add_argument("--finetune-epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every digit model (cosine decay)")
    ap.add_argument("--pretrained", default=None,
                    help="a 'deepbox train --model lenet5' run folder to start from instead of pre-training here")
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    if args.quick:
        args.pretrain_size, args.pretrain_epochs, args.head_epochs, args.finetune_epochs = 15000, 1, 6, 12
    rng = np.random.default_rng(args.seed)

    # -------------------------------------------------------------- pre-train on Fashion-MNIST
    (xf, yf, xfte, yfte), source = load_fashion_full(args.pretrain_size)
    deepbox.manual_seed(args.seed)
    pre = lenet5()
    with Timer() as t_pre:
        if args.pretrained:
            from deepbox.io import load

            run = load(str(Path(args.pretrained) / "checkpoint.safetensors"))
            pre.load_state_dict(run["model"])
            mean_f, std_f = run["extra"]["data"]["mean"][0], run["extra"]["data"]["std"][0]
            source, args.pretrain_epochs = f"run {args.pretrained}", run["extra"]["train"]["epochs"]
            print(f"pre-trained LeNet-5 loaded from {args.pretrained}")
        else:
            mean_f, std_f = float(xf.mean()), float(xf.std())
            opt = deepbox.optim.Adam(pre.parameters(), lr=2e-3 if args.quick else 1e-3)
            print(f"pre-training LeNet-5 on {len(xf):,} Fashion-MNIST images ({source}) for {args.pretrain_epochs} "
                  "epochs")
            for _ in range(args.pretrain_epochs):
                train_epoch(pre, opt, (xf - mean_f) / std_f, yf, 64, rng)
    pre_acc = evaluate(pre, (xfte - mean_f) / std_f, yfte)[1]
    print(f"  Fashion-MNIST test accuracy {pre_acc:.4f} on {len(xfte):,} images ({t_pre.seconds:.0f} s)")
    pretrained = pre.state_dict()

    # -------------------------------------------------------------- 500 labelled digits
    x, y, xte, yte = load_mnist10k(8000, 2000)
    idx = labelled_subset(y, args.labels_per_class)
    x, y = x[idx], y[idx]
    mean_d, std_d = float(x.mean()), float(x.std())
    x, xte = (x - mean_d) / std_d, (xte - mean_d) / std_d
    total_epochs = args.head_epochs + args.finetune_epochs
    print(f"{len(x)} labelled digits ({args.labels_per_class} per class), tested on {len(xte):,}")

    # -------------------------------------------------------------- fine-tune
    deepbox.manual_seed(args.seed + 1)
    ft = lenet5()
    # the head (the fully connected classifier) is new; only the convolutional body is carried over
    ft.classifier = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                  nn.Linear(84, 10))
    body = {k: v for k, v in pretrained.items() if k.startswith(BODY + ".")}
    report = ft.load_state_dict(body, strict=False)
    print(f"load_state_dict(strict=False): {report}")
    # phase 1: the pre-trained convolutions are frozen; the classifier (with its new head) learns
    ft.features.requires_grad_(False)
    frozen_trainable = trainable(ft)
    drift_before = ft.features[0].weight.detach().numpy().copy()
    head_acc = fit(ft, x, y, xte, yte, args.head_epochs, args.lr, 50, rng, "fine-tune, convolutions frozen")
    body_unchanged = bool(np.array_equal(drift_before, ft.features[0].weight.detach().numpy()))
    # phase 2: unfreeze everything
    ft.requires_grad_(True)
    ft_acc = fit(ft, x, y, xte, yte, args.finetune_epochs, args.lr, 50, rng, "fine-tune, all unfrozen")

    # -------------------------------------------------------------- from scratch, same steps
    deepbox.manual_seed(args.seed + 1)
    scratch = lenet5()
    scratch_acc = fit(scratch, x, y, xte, yte, total_epochs, args.lr, 50, rng, "from scratch")

    print(f"500 labelled digits: fine-tuned {ft_acc:.4f} vs from scratch {scratch_acc:.4f} "
          f"({100 * (ft_acc - scratch_acc):+.1f} points)")
    return finish(out, {
        "pretrain_source": source, "pretrain_size": len(xf), "pretrain_epochs": args.pretrain_epochs,
        "pretrain_seconds": t_pre.seconds, "pretrain_fashion_test_accuracy": pre_acc,
        "labelled_digits": len(x), "test_digits": len(xte),
        "missing_keys": list(report.missing_keys), "unexpected_keys": list(report.unexpected_keys),
        "trainable_frozen": frozen_trainable, "trainable_unfrozen": trainable(ft),
        "total_parameters": sum(p.numel() for p in ft.parameters()),
        "body_unchanged_while_frozen": body_unchanged,
        "head_only_accuracy": head_acc, "finetuned_accuracy": ft_acc, "scratch_accuracy": scratch_acc,
        "epochs_each": total_epochs,
    })


if __name__ == "__main__":
    main()

"""Lecture 9 — convolutional networks: LeNet-5 on MNIST-10k.

What it demonstrates: LeNet-5 (``deepbox.models.lenet5``; LeCun, Bottou, Bengio & Haffner,
"Gradient-based learning applied to document recognition", Proc. IEEE 1998) trained with Adam
on the first 8,000 digits of MNIST-10k and tested on the last 2,000. The paper reports 0.95 %
test error on the full MNIST (60,000 training images, 10,000 test); with 7.5x fewer training
images expect roughly 1.5-2 %. Writes the learning curves, the first layer's 6 filters, the
confusion matrix and the misclassified test digits.

    python examples/l09_lenet_mnist.py [--quick] [--out DIR] [--epochs N]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
from deepbox.models import lenet5  # noqa: E402
from examples._course import Timer, evaluate, finish, load_mnist10k, parser, setup, train_epoch  # noqa: E402

NAME = "l09_lenet_mnist"
PAPER_ERROR = 0.0095  # LeCun et al. 1998, LeNet-5 on the full MNIST test set


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    x, y, xte, yte = load_mnist10k(8000, 2000)
    if args.quick:
        x, y, xte, yte, args.epochs, args.lr = x[:512], y[:512], xte[:300], yte[:300], 2, 3e-3
    # standardise with the training set's statistics, as is usual for MNIST
    mean, std = float(x.mean()), float(x.std())
    x, xte = (x - mean) / std, (xte - mean) / std

    model = lenet5()
    n_params = sum(p.numel() for p in model.parameters())
    opt = deepbox.optim.Adam(model.parameters(), lr=args.lr)
    sched = deepbox.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    rng = np.random.default_rng(args.seed)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    with Timer() as t:
        for epoch in range(args.epochs):
            losses = train_epoch(model, opt, x, y, args.batch_size, rng)
            sched.step()
            tr_loss, tr_acc = evaluate(model, x, y)
            te_loss, te_acc = evaluate(model, xte, yte)
            for k, v in zip(history, (tr_loss, tr_acc, te_loss, te_acc)):
                history[k].append(v)
            print(f"epoch {epoch + 1:2d}: training loss {np.mean(losses):.4f}, test loss {te_loss:.4f}, "
                  f"test error {100 * (1 - te_acc):.2f} %")
    err = 1 - history["val_accuracy"][-1]
    print(f"LeNet-5 ({n_params:,} parameters), {len(x)} training digits: test error {100 * err:.2f} % on {len(xte)} "
          f"digits after {args.epochs} epochs ({t.seconds:.0f} s); LeCun et al. 1998: {100 * PAPER_ERROR:.2f} % "
          "with 60,000 training digits")

    model.eval()
    with deepbox.no_grad():
        pred = np.concatenate([model(deepbox.from_numpy(xte[i:i + 500])).argmax(1).numpy()
                               for i in range(0, len(xte), 500)])
    cm = np.zeros((10, 10), np.int64)
    np.add.at(cm, (yte, pred), 1)
    try:
        from deepbox import viz

        viz.plot_history(history, out / "learning_curves.png", val_label="test")
        viz.plot_filters(model.features[0].weight, out / "conv1_filters.png", title="LeNet-5 C1 filters")
        viz.plot_confusion_matrix(cm, out / "confusion_matrix.png", normalize=False)
        wrong = np.flatnonzero(pred != yte)[:32]
        if len(wrong):
            viz.plot_predictions(xte[wrong] * std + mean, pred[wrong], yte[wrong], out / "misclassified.png")
    except ImportError as e:  # plots need matplotlib; the numbers above do not
        print(f"no plots: {e}")
    return finish(out, {"test_error": err, "test_acc": 1 - err, "paper_error_full_mnist": PAPER_ERROR,
                        "n_train": len(x), "n_test": len(xte), "epochs": args.epochs, "seconds": t.seconds,
                        "parameters": n_params, "history": history})


if __name__ == "__main__":
    main()

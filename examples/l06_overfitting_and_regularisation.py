"""Lectures 6-8 (I) — overfitting a small training set, and four cures.

What it demonstrates: an MLP (784-512-512-10) trained with Adam on only a few hundred MNIST-10k
digits memorises them (training accuracy 100 %) while its validation loss turns back up: the
signature of overfitting. The same network, same data and same budget, then trained with
  * weight decay (L2 penalty through Adam's ``weight_decay``),
  * dropout (p = 0.5 after each hidden layer),
  * data augmentation (random shifts of up to 2 pixels),
  * early stopping (``deepbox.train.EarlyStopping`` on the validation loss, best weights restored),
and the test loss and accuracy of each, on 2,000 held-out digits, printed side by side; the
validation-loss curves in one plot. Training runs through ``deepbox.train.Trainer``.

    python examples/l06_overfitting_and_regularisation.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.train import EarlyStopping, Trainer  # noqa: E402
from deepbox.utils.data import DataLoader, Dataset, TensorDataset  # noqa: E402
from examples._course import evaluate, finish, load_mnist10k, parser, plt, save_fig, setup  # noqa: E402

NAME = "l06_overfitting_and_regularisation"


def mlp(dropout: float = 0.0, hidden: int = 512) -> nn.Module:
    drop = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), *drop,
                         nn.Linear(hidden, hidden), nn.ReLU(), *drop, nn.Linear(hidden, 10))


class RandomShift(Dataset):
    """Images shifted by up to ``max_shift`` pixels in each direction (zeros fill in), fresh every epoch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, max_shift: int = 2, seed: int = 0) -> None:
        self.x, self.y, self.s = x, y, max_shift
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        s = self.s
        dy, dx = self.rng.integers(-s, s + 1, 2)
        padded = np.pad(self.x[i], ((0, 0), (s, s), (s, s)))
        img = padded[:, s + dy:s + dy + 28, s + dx:s + dx + 28]
        return deepbox.from_numpy(np.ascontiguousarray(img)), int(self.y[i])


def run(config: str, data, epochs: int, seed: int, hidden: int = 512):
    xtr, ytr, xval, yval, xte, yte = data
    deepbox.manual_seed(seed)
    model = mlp(0.5 if config == "dropout" else 0.0, hidden)
    wd = 1e-3 if config == "weight decay" else 0.0
    opt = deepbox.optim.Adam(model.parameters(), lr=1e-3, weight_decay=wd)
    train_ds = RandomShift(xtr, ytr, 2, seed) if config == "augmentation" else \
        TensorDataset(deepbox.from_numpy(xtr), deepbox.from_numpy(ytr))
    gen = deepbox.Generator().manual_seed(seed)
    train = DataLoader(train_ds, batch_size=32, shuffle=True, generator=gen)
    val = DataLoader(TensorDataset(deepbox.from_numpy(xval), deepbox.from_numpy(yval)), batch_size=500)
    callbacks = [EarlyStopping("val_loss", patience=5, restore_best_weights=True)] if config == "early stopping" \
        else []
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), metrics=["accuracy"], callbacks=callbacks, verbose=0)
    hist = trainer.fit(train, val, epochs=epochs)
    train_loss, train_acc = evaluate(model, xtr, ytr)
    test_loss, test_acc = evaluate(model, xte, yte)
    return {"train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc,
            "epochs_run": len(hist["val_loss"]), "val_loss_curve": [float(v) for v in hist["val_loss"]]}


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=512)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    n_val, n_test = 1000, 2000
    if args.quick:
        args.n_train, args.epochs, args.hidden, n_val, n_test = 200, 10, 128, 300, 500
    xtr_all, ytr_all, xte, yte = load_mnist10k(8000, n_test)
    data = (xtr_all[:args.n_train], ytr_all[:args.n_train], xtr_all[-n_val:], ytr_all[-n_val:], xte, yte)
    print(f"{args.n_train} training digits, {n_val} validation, {n_test} test; {args.epochs} epochs at most")
    results = {}
    print(f"{'':>15} {'train acc':>9} {'test acc':>8} {'test loss':>9} {'epochs':>6}")
    for config in ("none", "weight decay", "dropout", "augmentation", "early stopping"):
        r = run(config, data, args.epochs, args.seed, args.hidden)
        results[config] = r
        print(f"{config:>15} {r['train_acc']:9.4f} {r['test_acc']:8.4f} {r['test_loss']:9.4f} {r['epochs_run']:6d}")

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(7, 4.5))
    for config, r in results.items():
        ax.plot(np.arange(1, len(r["val_loss_curve"]) + 1), r["val_loss_curve"], label=config)
    ax.set(xlabel="epoch", ylabel="validation loss", title=f"MLP on {args.n_train} MNIST digits", yscale="log")
    ax.legend(title="regulariser")
    save_fig(fig, out / "validation_loss.png")
    base = results["none"]["val_loss_curve"]
    return finish(out, {**results, "baseline_val_loss_min": float(min(base)),
                        "baseline_val_loss_last": float(base[-1])})


if __name__ == "__main__":
    main()

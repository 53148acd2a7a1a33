"""Lecture 5 — optimisation at scale: SGD, momentum, Nesterov, RMSprop and Adam on one problem; L-BFGS.

What it demonstrates:
  1. The same MLP (64-128-10, same initial weights, same minibatch order) trained on scikit-learn's
     8x8 digits with each of SGD, SGD + momentum, SGD + Nesterov momentum, RMSprop and Adam, at
     each method's usual learning rate; the training-loss curves share one plot (optimizers.png).
  2. L-BFGS (``deepbox.optim.LBFGS`` with a strong-Wolfe line search) on a small full-batch problem,
     softmax regression on the digits, against full-batch gradient descent with the same number of
     gradient evaluations (lbfgs.png).

    python examples/l05_optimizers.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox import nn  # noqa: E402
from examples._course import finish, load_digits, parser, plt, save_fig, setup, train_epoch  # noqa: E402

NAME = "l05_optimizers"

OPTIMIZERS = {
    "SGD": lambda p: deepbox.optim.SGD(p, lr=0.1),
    "momentum": lambda p: deepbox.optim.SGD(p, lr=0.1, momentum=0.9),
    "Nesterov": lambda p: deepbox.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "RMSprop": lambda p: deepbox.optim.RMSprop(p, lr=1e-3),
    "Adam": lambda p: deepbox.optim.Adam(p, lr=1e-3),
}


def smooth(x, k: int = 10):
    x = np.asarray(x)
    if len(x) < k:
        return x
    return np.convolve(x, np.ones(k) / k, mode="valid")


def _closure(opt, xt, yt, W, b, curve):
    """The closure L-BFGS calls as often as its line search needs: loss and gradients, each logged."""

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ W + b, yt) + 1e-3 * (W * W).sum()
        loss.backward()
        curve.append(float(loss))
        return loss

    return closure


def lbfgs_vs_gd(X, y, evals: int):
    """Softmax regression, full batch: L-BFGS and gradient descent, each allowed ``evals`` gradient evaluations."""
    xt, yt = deepbox.tensor(X, dtype=deepbox.float64), deepbox.from_numpy(y)
    results = {}
    for method in ("GD", "L-BFGS"):
        W = deepbox.zeros(X.shape[1], 10, dtype=deepbox.float64, requires_grad=True)
        b = deepbox.zeros(10, dtype=deepbox.float64, requires_grad=True)
        curve: list[float] = []
        if method == "GD":
            opt = deepbox.optim.SGD([W, b], lr=0.5)
            for _ in range(evals):
                opt.step(_closure(opt, xt, yt, W, b, curve))
        else:
            opt = deepbox.optim.LBFGS([W, b], lr=1, max_iter=evals, max_eval=evals, history_size=10,
                                      tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe")
            opt.step(_closure(opt, xt, yt, W, b, curve))
        results[method] = curve
    return results


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    X, y = load_digits()
    if args.quick:
        X, y, args.epochs = X[:512], y[:512], 2
    x4 = X.astype(np.float32)

    deepbox.manual_seed(args.seed)
    init = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).state_dict()
    curves = {}
    for name, make in OPTIMIZERS.items():
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        model.load_state_dict(init)
        opt = make(model.parameters())
        rng = np.random.default_rng(args.seed)  # the same minibatch order for everyone
        losses = []
        for _ in range(args.epochs):
            losses += train_epoch(model, opt, x4, y, 32, rng)
        curves[name] = losses
        print(f"{name:>9}: first-epoch mean loss {np.mean(losses[:len(losses) // args.epochs]):.4f}, "
              f"last-epoch mean loss {np.mean(losses[-(len(losses) // args.epochs):]):.4f}")

    evals = 10 if args.quick else 50
    lb = lbfgs_vs_gd(X.astype(np.float64), y, evals)
    print(f"softmax regression, full batch, {evals} gradient evaluations: "
          f"GD loss {lb['GD'][-1]:.5f}, L-BFGS loss {min(lb['L-BFGS']):.5f}")

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(7, 4.5))
    for name, c in curves.items():
        ax.plot(smooth(c), label=name)
    ax.set(xlabel="step (minibatch of 32)", ylabel="training loss (moving average of 10)", yscale="log",
           title="one MLP on digits, five optimisers")
    ax.legend()
    save_fig(fig, out / "optimizers.png")
    fig, ax = pyplot.subplots(figsize=(6, 4))
    for name, c in lb.items():
        ax.plot(c, label=name)
    ax.set(xlabel="gradient evaluation", ylabel="loss", yscale="log", title="full-batch softmax regression")
    ax.legend()
    save_fig(fig, out / "lbfgs.png")
    k = max(1, len(next(iter(curves.values()))) // args.epochs)
    return finish(out, {
        "first_epoch_loss": {n: float(np.mean(c[:k])) for n, c in curves.items()},
        "last_epoch_loss": {n: float(np.mean(c[-k:])) for n, c in curves.items()},
        "gd_loss": lb["GD"][-1], "lbfgs_loss": float(min(lb["L-BFGS"])), "evals": evals,
    })


if __name__ == "__main__":
    main()

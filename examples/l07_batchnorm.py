"""Lectures 6-8 (II) — batch normalisation speeds up training.

What it demonstrates: the experiment of Ioffe & Szegedy ("Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift", ICML 2015, Fig. 1): an MLP with three
hidden layers of 100 sigmoid units on MNIST (here MNIST-10k: 8,000 training, 2,000 test digits),
trained with plain SGD, minibatches of 60, with and without ``nn.BatchNorm1d`` before each
sigmoid. Same initial weights for the shared layers, same minibatch order, same learning rate.
With batch norm the training loss falls much faster and the test accuracy climbs sooner; a
second batch-norm run at 5x the learning rate shows that it also tolerates larger steps.

    python examples/l07_batchnorm.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox import nn  # noqa: E402
from examples._course import evaluate, finish, load_mnist10k, parser, plt, save_fig, setup  # noqa: E402

NAME = "l07_batchnorm"


def mlp(bn: bool, hidden: int = 100, depth: int = 3) -> nn.Sequential:
    layers, d = [nn.Flatten()], 784
    for _ in range(depth):
        layers += [nn.Linear(d, hidden)] + ([nn.BatchNorm1d(hidden)] if bn else []) + [nn.Sigmoid()]
        d = hidden
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


def train(model, lr, x, y, xte, yte, steps, eval_every, seed):
    opt = deepbox.optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses, evals = [], []
    step = 0
    while step < steps:
        for idx in np.array_split(rng.permutation(len(x)), len(x) // 60):
            loss = F.cross_entropy(model(deepbox.from_numpy(x[idx])), deepbox.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            step += 1
            if step % eval_every == 0 or step == steps:
                evals.append((step, evaluate(model, xte, yte)[1]))
            if step == steps:
                break
    return losses, evals


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    n_test = 2000
    if args.quick:
        args.steps, n_test = 100, 300
    x, y, xte, yte = load_mnist10k(8000, n_test)
    eval_every = max(args.steps // 15, 1)

    deepbox.manual_seed(args.seed)
    plain = mlp(False)
    runs = {}
    for label, bn, lr in (("plain", False, args.lr), ("batch norm", True, args.lr),
                          ("batch norm, 5x lr", True, 5 * args.lr)):
        model = mlp(bn)
        # the BN net starts from the plain net's linear weights, so the only difference is the normalisation
        lin_src = [m for m in plain.modules() if isinstance(m, nn.Linear)]
        lin_dst = [m for m in model.modules() if isinstance(m, nn.Linear)]
        for s, d in zip(lin_src, lin_dst):
            d.load_state_dict(s.state_dict())
        losses, evals = train(model, lr, x, y, xte, yte, args.steps, eval_every, args.seed)
        runs[label] = {"losses": losses, "evals": evals}
        k = max(len(losses) // 10, 1)
        print(f"{label:>18} (lr {lr:g}): training loss over the last {k} steps {np.mean(losses[-k:]):.4f}, "
              f"test accuracy {evals[-1][1]:.4f} after {args.steps} steps")

    pyplot = plt()
    fig, ax = pyplot.subplots(1, 2, figsize=(11, 4))
    for label, r in runs.items():
        c = np.convolve(r["losses"], np.ones(20) / 20, mode="valid") if len(r["losses"]) > 20 else r["losses"]
        ax[0].plot(c, label=label)
        ax[1].plot(*zip(*r["evals"]), marker="o", label=label)
    ax[0].set(xlabel="SGD step", ylabel="training loss (moving average of 20)", yscale="log")
    ax[1].set(xlabel="SGD step", ylabel="test accuracy", title="3 x 100 sigmoid MLP on MNIST-10k")
    ax[0].legend()
    ax[1].legend()
    save_fig(fig, out / "batchnorm.png")
    k = max(args.steps // 10, 1)
    return finish(out, {label: {"final_train_loss": float(np.mean(r["losses"][-k:])),
                                "test_acc": r["evals"][-1][1], "test_acc_curve": r["evals"]}
                        for label, r in runs.items()})


if __name__ == "__main__":
    main()

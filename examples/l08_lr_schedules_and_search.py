"""Lectures 6-8 (III) — learning-rate schedules, and a random hyperparameter search.

What it demonstrates:
  1. One MLP (784-256-10, same initial weights and minibatch order) trained on MNIST-10k with SGD +
     momentum under five schedules from ``deepbox.optim.lr_scheduler``: constant, step decay
     (StepLR), cosine annealing, linear warm-up then cosine (SequentialLR of LinearLR and
     CosineAnnealingLR), and the one-cycle policy (OneCycleLR), all stepped per minibatch; the
     learning rates and the training losses in one figure, test accuracies side by side.
  2. Random search (Bergstra & Bengio, JMLR 2012) over the learning rate (log-uniform), weight
     decay (log-uniform) and hidden width (choice), each trial a short training scored on a
     validation split: ``deepbox.tune`` when it is installed, else the same search written out here.

    python examples/l08_lr_schedules_and_search.py [--quick] [--out DIR]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.optim import lr_scheduler as S  # noqa: E402
from examples._course import evaluate, finish, load_mnist10k, parser, plt, save_fig, setup, train_epoch  # noqa: E402

NAME = "l08_lr_schedules_and_search"


def mlp(hidden: int = 256) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def schedules(opt, total: int, lr: float) -> dict:
    warm = max(total // 10, 1)
    return {
        "constant": lambda: None,
        "step": lambda: S.StepLR(opt, step_size=max(total // 3, 1), gamma=0.1),
        "cosine": lambda: S.CosineAnnealingLR(opt, T_max=total),
        "warm-up + cosine": lambda: S.SequentialLR(
            opt, [S.LinearLR(opt, start_factor=0.01, total_iters=warm), S.CosineAnnealingLR(opt, T_max=total - warm)],
            milestones=[warm]),
        "one-cycle": lambda: S.OneCycleLR(opt, max_lr=lr, total_steps=total),
    }


def compare_schedules(data, epochs: int, lr: float, seed: int, batch: int = 64):
    xtr, ytr, xte, yte = data
    deepbox.manual_seed(seed)
    init = mlp().state_dict()
    total = epochs * math.ceil(len(xtr) / batch)
    results = {}
    for name in ("constant", "step", "cosine", "warm-up + cosine", "one-cycle"):
        model = mlp()
        model.load_state_dict(init)
        opt = deepbox.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        sched = schedules(opt, total, lr)[name]()
        rng = np.random.default_rng(seed)
        losses, lrs = [], []
        for _ in range(epochs):
            lrs_epoch = []
            # record the rate each step used (read before the scheduler moves it)
            for idx in np.array_split(rng.permutation(len(xtr)), math.ceil(len(xtr) / batch)):
                lrs_epoch.append(opt.param_groups[0]["lr"])
                losses += train_epoch(model, opt, xtr[idx], ytr[idx], len(idx), None)
                if sched is not None:
                    sched.step()
            lrs += lrs_epoch
        test_loss, test_acc = evaluate(model, xte, yte)
        k = max(len(losses) // 10, 1)
        results[name] = {"lrs": lrs, "losses": losses, "final_train_loss": float(np.mean(losses[-k:])),
                         "test_loss": test_loss, "test_acc": test_acc}
        print(f"{name:>17}: training loss (last 10 %) {results[name]['final_train_loss']:.4f}, "
              f"test accuracy {test_acc:.4f}")
    return results


SPACE = {"lr": ("loguniform", 1e-3, 1.0), "weight_decay": ("loguniform", 1e-6, 1e-2),
         "hidden": ("choice", [32, 128, 512])}


def trial(config: dict, data, epochs: int, seed: int) -> float:
    """Train with ``config`` and return the validation accuracy."""
    xtr, ytr, xval, yval = data
    deepbox.manual_seed(seed)
    model = mlp(int(config["hidden"]))
    opt = deepbox.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"])
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        losses = train_epoch(model, opt, xtr, ytr, 64, rng)
        if not np.isfinite(losses[-1]):
            return 0.0
    return evaluate(model, xval, yval)[1]


def random_search(data, n_trials: int, epochs: int, seed: int):
    """The search through ``deepbox.tune`` when present, else the same loop written out."""
    objective = lambda cfg: trial(cfg, data, epochs, seed)  # noqa: E731
    try:
        from deepbox import tune
    except ImportError:
        tune = None
    if tune is not None:
        space = {"lr": tune.LogUniform(1e-3, 1.0), "weight_decay": tune.LogUniform(1e-6, 1e-2),
                 "hidden": tune.Choice([32, 128, 512])}
        res = tune.random_search(objective, space, n_trials=n_trials, seed=seed, metric="val_acc", mode="max")
        return [(dict(t["config"]), float(t["value"])) for t in res.sorted()], "deepbox.tune.random_search"
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_trials):
        cfg = {}
        for k, (kind, *a) in SPACE.items():
            if kind == "loguniform":
                cfg[k] = float(math.exp(rng.uniform(math.log(a[0]), math.log(a[1]))))
            else:
                cfg[k] = a[0][rng.integers(len(a[0]))]
        rows.append((cfg, objective(cfg)))
    return rows, "the search written out in this example"


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    n_train, n_test, search_epochs = 8000, 2000, 2
    if args.quick:
        args.epochs, args.trials, n_train, n_test, search_epochs = 2, 3, 1000, 500, 1
    xtr, ytr, xte, yte = load_mnist10k(8000, n_test)
    xtr, ytr = xtr[:n_train], ytr[:n_train]
    sched = compare_schedules((xtr, ytr, xte, yte), args.epochs, args.lr, args.seed)

    n_val = len(xtr) // 5
    data = (xtr[:-n_val], ytr[:-n_val], xtr[-n_val:], ytr[-n_val:])
    rows, how = random_search(data, args.trials, search_epochs, args.seed)
    rows.sort(key=lambda r: -r[1])
    print(f"random search ({how}), {len(rows)} trials of {search_epochs} epoch(s), best first:")
    print(f"{'lr':>10} {'weight_decay':>12} {'hidden':>6} {'val acc':>8}")
    for cfg, score in rows:
        print(f"{cfg['lr']:10.4g} {cfg['weight_decay']:12.3g} {int(cfg['hidden']):6d} {score:8.4f}")

    pyplot = plt()
    fig, ax = pyplot.subplots(1, 3, figsize=(15, 4))
    for name, r in sched.items():
        ax[0].plot(r["lrs"], label=name)
        c = np.convolve(r["losses"], np.ones(20) / 20, mode="valid") if len(r["losses"]) > 20 else r["losses"]
        ax[1].plot(c, label=name)
    ax[0].set(xlabel="step", ylabel="learning rate", title="schedules")
    ax[1].set(xlabel="step", ylabel="training loss (moving average of 20)", yscale="log")
    ax[0].legend()
    lrs = [c["lr"] for c, _ in rows]
    sc = ax[2].scatter(lrs, [s for _, s in rows], c=[np.log2(c["hidden"]) for c, _ in rows], cmap="viridis")
    ax[2].set(xscale="log", xlabel="learning rate", ylabel="validation accuracy", title="random search")
    fig.colorbar(sc, ax=ax[2], label="log2 hidden units")
    save_fig(fig, out / "schedules_and_search.png")
    return finish(out, {
        "schedules": {n: {k: r[k] for k in ("final_train_loss", "test_loss", "test_acc")} for n, r in sched.items()},
        "lr_curves": {n: [r["lrs"][0], float(min(r["lrs"])), float(max(r["lrs"])), r["lrs"][-1]]
                      for n, r in sched.items()},
        "search": [{"config": c, "val_acc": s} for c, s in rows], "search_impl": how,
        "best_config": rows[0][0], "best_val_acc": rows[0][1],
    })


if __name__ == "__main__":
    main()

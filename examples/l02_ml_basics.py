"""Lecture 2 — machine-learning basics: linear regression three ways, maximum likelihood, two classifiers.

What it demonstrates, with numbers side by side:
  1. Linear regression on synthetic data y = X w* + b* + noise: the closed-form least-squares solution
     (normal equations, solved with ``deepbox.linalg.solve``) equals the solution that gradient descent
     reaches with deepbox's autograd.
  2. Maximum likelihood: fitting a Gaussian model y ~ N(Xw + b, sigma^2) by minimising its negative
     log-likelihood gives the same w and b as least squares, and sigma^2 = mean squared residual.
  3. Logistic (softmax) regression and k-nearest neighbours on scikit-learn's 8x8 digits
     (``deepbox.ml`` estimators, with scikit-learn's accuracy alongside when it is installed).

    python examples/l02_ml_basics.py [--quick] [--out DIR]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from examples._course import finish, load_digits, parser, plt, save_fig, setup  # noqa: E402

NAME = "l02_ml_basics"


def linear_data(n: int, d: int, noise: float, rng):
    X = rng.standard_normal((n, d))
    w_true = rng.uniform(-2, 2, d)
    y = X @ w_true + 0.5 + noise * rng.standard_normal(n)
    return X, y, w_true


def closed_form(X, y):
    """Least squares with a bias column: solve (A^T A) theta = A^T y."""
    A = deepbox.cat([deepbox.tensor(X), deepbox.ones(len(X), 1, dtype=deepbox.float64)], dim=1)
    theta = deepbox.linalg.solve(A.T @ A, A.T @ deepbox.tensor(y))
    return theta.numpy()


def gradient_descent(X, y, steps: int, lr: float):
    """Full-batch gradient descent on the mean squared error, gradients from autograd."""
    Xt, yt = deepbox.tensor(X), deepbox.tensor(y)
    w = deepbox.zeros(X.shape[1], dtype=deepbox.float64, requires_grad=True)
    b = deepbox.zeros(1, dtype=deepbox.float64, requires_grad=True)
    opt = deepbox.optim.SGD([w, b], lr=lr)
    curve = []
    for _ in range(steps):
        loss = ((Xt @ w + b - yt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(float(loss))
    return np.concatenate([w.detach().numpy(), b.detach().numpy()]), curve


def gaussian_mle(X, y, steps: int):
    """Minimise -log p(y | X; w, b, sigma) = n/2 log(2 pi sigma^2) + sum (y - Xw - b)^2 / (2 sigma^2)."""
    Xt, yt = deepbox.tensor(X), deepbox.tensor(y)
    w = deepbox.zeros(X.shape[1], dtype=deepbox.float64, requires_grad=True)
    b = deepbox.zeros(1, dtype=deepbox.float64, requires_grad=True)
    log_sigma = deepbox.zeros(1, dtype=deepbox.float64, requires_grad=True)
    opt = deepbox.optim.LBFGS([w, b, log_sigma], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def nll():
        opt.zero_grad()
        r = yt - Xt @ w - b
        loss = (0.5 * math.log(2 * math.pi) + log_sigma + r * r / (2 * (2 * log_sigma).exp())).mean()
        loss.backward()
        return loss

    opt.step(nll)
    return np.concatenate([w.detach().numpy(), b.detach().numpy()]), float(log_sigma.exp()) ** 2


def classifiers(quick: bool):
    X, y = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    if quick:
        idx = idx[:600]
    n_test = len(idx) // 4
    te, tr = idx[:n_test], idx[n_test:]
    res = {}
    try:
        from deepbox.ml import KNeighborsClassifier, LogisticRegression

        logreg = LogisticRegression(C=1.0, max_iter=100 if quick else 500).fit(X[tr], y[tr])
        res["logreg_acc"] = float(logreg.score(X[te], y[te]))
        knn = KNeighborsClassifier(n_neighbors=3).fit(X[tr], y[tr])
        res["knn_acc"] = float(knn.score(X[te], y[te]))
        res["source"] = "deepbox.ml"
    except ImportError:  # deepbox.ml not installed: the same models from deepbox's tensors
        res.update(_classifiers_by_hand(X[tr], y[tr], X[te], y[te], quick))
        res["source"] = "deepbox tensors (deepbox.ml unavailable)"
    try:
        from sklearn.linear_model import LogisticRegression as SkLogReg
        from sklearn.neighbors import KNeighborsClassifier as SkKNN

        res["sklearn_logreg_acc"] = float(SkLogReg(C=1.0, max_iter=2000).fit(X[tr], y[tr]).score(X[te], y[te]))
        res["sklearn_knn_acc"] = float(SkKNN(n_neighbors=3).fit(X[tr], y[tr]).score(X[te], y[te]))
    except ImportError:
        pass
    return res


def _classifiers_by_hand(Xtr, ytr, Xte, yte, quick):
    W = deepbox.zeros(64, 10, requires_grad=True)
    b = deepbox.zeros(10, requires_grad=True)
    opt = deepbox.optim.Adam([W, b], lr=0.05)
    xt, yt = deepbox.from_numpy(Xtr), deepbox.from_numpy(ytr)
    for _ in range(100 if quick else 400):
        loss = F.cross_entropy(xt @ W + b, yt) + 0.5 / len(Xtr) * (W * W).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with deepbox.no_grad():
        acc_lr = float(((deepbox.from_numpy(Xte) @ W + b).argmax(1).numpy() == yte).mean())
    d2 = (Xte ** 2).sum(1)[:, None] - 2 * Xte @ Xtr.T + (Xtr ** 2).sum(1)[None]
    nn3 = np.argsort(d2, axis=1)[:, :3]
    votes = np.array([np.bincount(ytr[r], minlength=10).argmax() for r in nn3])
    return {"logreg_acc": acc_lr, "knn_acc": float((votes == yte).mean())}


def main(argv=None) -> dict:
    args = parser(NAME, __doc__).parse_args(argv)
    out = setup(args, NAME)
    rng = np.random.default_rng(args.seed)
    n, d = (100, 3) if args.quick else (1000, 8)
    X, y, w_true = linear_data(n, d, noise=0.5, rng=rng)

    theta_cf = closed_form(X, y)
    theta_gd, curve = gradient_descent(X, y, steps=300 if args.quick else 1000, lr=0.1)
    theta_mle, sigma2_mle = gaussian_mle(X, y, steps=50 if args.quick else 200)
    resid = y - np.c_[X, np.ones(n)] @ theta_cf
    print(f"{'param':>6} {'true':>8} {'closed form':>12} {'grad. descent':>14} {'Gaussian MLE':>13}")
    for i in range(d + 1):
        true = w_true[i] if i < d else 0.5
        label = f"w{i}" if i < d else "b"
        print(f"{label:>6} {true:8.4f} {theta_cf[i]:12.6f} {theta_gd[i]:14.6f} {theta_mle[i]:13.6f}")
    print(f"sigma^2: MLE {sigma2_mle:.6f}, mean squared residual of least squares {np.mean(resid ** 2):.6f}")
    cls = classifiers(args.quick)
    print(f"digits ({cls['source']}): logistic regression accuracy {cls['logreg_acc']:.4f}, "
          f"3-NN accuracy {cls['knn_acc']:.4f}", end="")
    if "sklearn_logreg_acc" in cls:
        print(f"  (scikit-learn: {cls['sklearn_logreg_acc']:.4f}, {cls['sklearn_knn_acc']:.4f})")
    else:
        print()

    pyplot = plt()
    fig, ax = pyplot.subplots(1, 2, figsize=(10, 4))
    ax[0].semilogy(np.array(curve) - np.mean(resid ** 2) + 1e-12)
    ax[0].set(xlabel="gradient-descent step", ylabel="MSE - MSE(closed form)", title="GD converges to the closed form")
    ax[1].bar(np.arange(d + 1) - 0.2, theta_cf, 0.4, label="closed form")
    ax[1].bar(np.arange(d + 1) + 0.2, theta_mle, 0.4, label="Gaussian MLE")
    ax[1].set(xlabel="parameter (last: bias)", title="least squares = maximum likelihood")
    ax[1].legend()
    save_fig(fig, out / "linear_regression.png")
    return finish(out, {
        "max_abs_diff_gd_vs_closed_form": float(np.abs(theta_gd - theta_cf).max()),
        "max_abs_diff_mle_vs_closed_form": float(np.abs(theta_mle - theta_cf).max()),
        "sigma2_mle": sigma2_mle, "mean_squared_residual": float(np.mean(resid ** 2)),
        **cls,
    })


if __name__ == "__main__":
    main()

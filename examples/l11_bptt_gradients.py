"""Lecture 11 — backpropagation through time: vanishing and exploding gradients, and gradient clipping.

What it demonstrates:
  1. Gradient flow through time. A vanilla RNN h_t = tanh(W h_{t-1} + U x_t) is unrolled for T
     steps; the loss at the last step is backpropagated and ``||dL/dh_t||`` is read at every step
     (``retain_grad``). BPTT multiplies by W^T diag(tanh') once per step, so the norm changes
     geometrically with the distance T - t: with W scaled to spectral radius 0.5 it vanishes, with
     radius 1.5 in the linear regime it explodes (Pascanu, Mikolov & Bengio, ICML 2013). Through an
     LSTM (``nn.LSTM``, gradient w.r.t. the inputs) the gradient travels along the cell state scaled
     by the forget gates: at the default initialisation (f ~ 0.5) it still fades, with the forget
     bias raised to 3 (f ~ 0.95) it carries much farther.
  2. Gradient clipping. A tanh RNN with a large recurrent initialisation is trained on a
     remember-the-first-input task at a high learning rate, with and without
     ``nn.utils.clip_grad_norm_``: the gradient norms before clipping spike by orders of
     magnitude; after clipping every update's norm is at most ``max_norm``.

    python examples/l11_bptt_gradients.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox import nn  # noqa: E402
from examples._course import finish, parser, plt, save_fig, setup  # noqa: E402

NAME = "l11_bptt_gradients"


def orthogonal(n: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def rnn_grad_norms(radius: float, T: int, hidden: int, rng, linear: bool = False, input_scale: float = 0.1):
    """``||dL/dh_t||`` for t = 1..T, L = sum of the last hidden state; W = radius * orthogonal."""
    W = deepbox.tensor(radius * orthogonal(hidden, rng), requires_grad=True)
    U = deepbox.tensor(rng.standard_normal((hidden, hidden)) / np.sqrt(hidden))
    xs = deepbox.tensor(input_scale * rng.standard_normal((T, hidden)))
    h = deepbox.zeros(hidden, dtype=deepbox.float64)
    hs = []
    for t in range(T):
        pre = W @ h + U @ xs[t]
        h = pre if linear else deepbox.tanh(pre)
        h.retain_grad()
        hs.append(h)
    h.sum().backward()
    return np.array([float(np.linalg.norm(ht.grad.numpy())) for ht in hs])


def lstm_grad_norms(T: int, hidden: int, seed: int, forget_bias: float = 0.0):
    """``||dL/dx_t||`` through a freshly initialised ``nn.LSTM`` (L = sum of the last output)."""
    deepbox.manual_seed(seed)
    lstm = nn.LSTM(hidden, hidden).double()
    with deepbox.no_grad():  # PyTorch's gate order is (input, forget, cell, output)
        lstm.bias_ih_l0[hidden:2 * hidden] = forget_bias
        lstm.bias_hh_l0[hidden:2 * hidden] = 0.0
    x = deepbox.randn(T, 1, hidden, dtype=deepbox.float64, requires_grad=True)
    out, _ = lstm(x)
    out[-1].sum().backward()
    return np.linalg.norm(x.grad.numpy()[:, 0], axis=1)


class RecallRNN(nn.Module):
    """Read a sequence of one-hot symbols, output the first one at the end (a long-range dependency)."""

    def __init__(self, n_symbols: int, hidden: int, radius: float, input_scale: float = 0.01) -> None:
        super().__init__()
        self.rnn = nn.RNN(n_symbols, hidden, nonlinearity="tanh")
        self.out = nn.Linear(hidden, n_symbols)
        with deepbox.no_grad():
            # a recurrent matrix of spectral radius > 1 and small inputs keep tanh near its linear
            # regime, where BPTT multiplies by ~radius per step: the exploding regime
            self.rnn.weight_hh_l0.copy_(deepbox.tensor(radius * orthogonal(hidden, np.random.default_rng(0)),
                                                       dtype=deepbox.float32))
            self.rnn.weight_ih_l0.mul_(input_scale)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.out(h[-1])


def train_recall(clip: float | None, steps: int, T: int, seed: int, lr: float = 0.05, hidden: int = 32, k: int = 4):
    deepbox.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RecallRNN(k, hidden, radius=1.6)
    opt = deepbox.optim.SGD(model.parameters(), lr=lr)
    norms, applied, losses = [], [], []
    for _ in range(steps):
        sym = rng.integers(0, k, (T, 32))
        x = np.eye(k, dtype=np.float32)[sym]
        loss = F.cross_entropy(model(deepbox.from_numpy(x)), deepbox.from_numpy(sym[0]))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), clip)))
        else:
            norms.append(float(np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum()
                                           for p in model.parameters()))))
        applied.append(float(np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum()
                                         for p in model.parameters()))))
        opt.step()
        losses.append(float(loss))
    return {"norm_before_clip": norms, "applied_norm": applied, "losses": losses}


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--T", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--clip", type=float, default=1.0)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    if args.quick:
        args.T, args.hidden, args.steps = 25, 16, 25
    rng = np.random.default_rng(args.seed)
    flows = {
        "tanh RNN, radius 0.5": rnn_grad_norms(0.5, args.T, args.hidden, rng),
        "tanh RNN, radius 1.0": rnn_grad_norms(1.0, args.T, args.hidden, rng),
        "linear RNN, radius 1.5": rnn_grad_norms(1.5, args.T, args.hidden, rng, linear=True),
        "LSTM, forget bias 0": lstm_grad_norms(args.T, args.hidden, args.seed),
        "LSTM, forget bias 3": lstm_grad_norms(args.T, args.hidden, args.seed, forget_bias=3.0),
    }
    ratios = {}
    for name, g in flows.items():
        ratios[name] = float(g[0] / g[-1])
        print(f"{name:>23}: ||grad|| at the last step {g[-1]:.3e}, at the first {g[0]:.3e}, "
              f"ratio first/last {ratios[name]:.3e}")

    T_train = 10 if args.quick else 30
    runs = {"no clipping": train_recall(None, args.steps, T_train, args.seed),
            f"clip_grad_norm_({args.clip})": train_recall(args.clip, args.steps, T_train, args.seed)}
    for name, r in runs.items():
        k = max(args.steps // 10, 1)
        print(f"{name:>21}: gradient norm before clipping max {max(r['norm_before_clip']):.3g} "
              f"(median {np.median(r['norm_before_clip']):.3g}), applied max {max(r['applied_norm']):.3g}; "
              f"loss over the last {k} steps {np.nanmean(r['losses'][-k:]):.4f}")

    pyplot = plt()
    fig, ax = pyplot.subplots(1, 3, figsize=(16, 4.2))
    for name, g in flows.items():
        ax[0].semilogy(np.arange(1, args.T + 1), g, label=name)
    ax[0].set(xlabel="time step t (loss at t = T)", ylabel="||dL/dh_t|| (LSTM: ||dL/dx_t||)",
              title="gradient flow through time")
    ax[0].legend(fontsize=8)
    for name, r in runs.items():
        ax[1].semilogy(r["norm_before_clip"], label=f"{name}: before clipping", alpha=0.7)
        ax[1].semilogy(r["applied_norm"], "--", label=f"{name}: applied")
        ax[2].plot(r["losses"], label=name)
    ax[1].set(xlabel="SGD step", ylabel="gradient norm", title="exploding gradients and clipping")
    ax[1].legend(fontsize=8)
    ax[2].set(xlabel="SGD step", ylabel="loss", title=f"recall the first of {T_train} symbols")
    ax[2].legend()
    save_fig(fig, out / "bptt_gradients.png")
    clipped = runs[f"clip_grad_norm_({args.clip})"]
    return finish(out, {
        "first_over_last_grad_ratio": ratios,
        "grad_norms": {n: [float(v) for v in g] for n, g in flows.items()},
        "clip": args.clip, "max_applied_norm_clipped": float(max(clipped["applied_norm"])),
        "max_norm_before_clip_clipped": float(max(clipped["norm_before_clip"])),
        "max_norm_unclipped": float(max(runs["no clipping"]["norm_before_clip"])),
        "final_loss": {n: float(np.nanmean(r["losses"][-max(args.steps // 10, 1):])) for n, r in runs.items()},
    })


if __name__ == "__main__":
    main()

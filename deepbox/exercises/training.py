"""``check NAME --train``: the student's piece inside a small real model, beside the same run with deepbox's own.

Each run starts from the same seed (the same initial weights and batch order), trains on a few
thousand MNIST-10k digits and reports the test accuracy on held-out digits, the training time
and the time per step, so a correct but slow piece shows what its speed costs. The data is
``mnist-10k.npz`` (10,000 real MNIST digits; the first 8,000 train, the last 2,000 test), found
through ``$DEEPBOX_DATA``, ``./data`` or the ``shared/data`` folder beside the repository.
"""
from __future__ import annotations

import contextlib
import os
import time

import numpy as np

__all__ = ["find_mnist", "load_mnist", "train_report", "train_mlp", "train_lenet", "train_row_model",
           "train_optimizer", "run_compare"]


def find_mnist(path: str | None = None) -> str:
    """The path of ``mnist-10k.npz`` (``FileNotFoundError`` lists where it looked)."""
    from deepbox.vision.datasets.vision import data_dirs

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cands = [path] if path else []
    cands += [os.path.join(d, "mnist-10k.npz") for d in data_dirs()]
    cands += [os.path.join("data", "mnist-10k.npz"), os.path.join(os.path.dirname(repo), "shared", "data",
                                                                 "mnist-10k.npz")]
    for c in cands:
        if c and os.path.isfile(c):
            return c
    raise FileNotFoundError("mnist-10k.npz not found; looked at " + ", ".join(cands)
                            + " (set $DEEPBOX_DATA to the folder that holds it)")


def load_mnist(n_train: int, n_test: int, path: str | None = None):
    """``(x_train, y_train, x_test, y_test)``: normalised float32 images (N, 1, 28, 28) and int64 labels."""
    with np.load(find_mnist(path), allow_pickle=False) as d:
        images, labels = d["images"], d["labels"]
    x = ((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]
    y = labels.astype(np.int64)
    n_train = min(int(n_train), 8000)
    n_test = min(int(n_test), 2000)
    return x[:n_train], y[:n_train], x[8000:8000 + n_test], y[8000:8000 + n_test]


def _fit(build_model, make_optimizer, data, epochs: int, batch_size: int, seed: int = 0, loss_fn=None):
    """Train and evaluate; returns (test accuracy, training seconds, steps)."""
    import deepbox
    import deepbox.nn.functional as F

    x, y, xt, yt = data
    deepbox.manual_seed(seed)
    model = build_model()
    opt = make_optimizer(model.parameters())
    rng = np.random.default_rng(seed)
    loss_fn = loss_fn or F.cross_entropy
    steps = 0
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            loss = loss_fn(model(deepbox.tensor(x[idx])), deepbox.tensor(y[idx]))
            if not np.isfinite(float(loss)):
                raise FloatingPointError(f"the loss became {float(loss)} at step {steps}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    seconds = time.perf_counter() - t0
    model.eval()
    correct = 0
    with deepbox.no_grad():
        for s in range(0, len(xt), 500):
            correct += int((model(deepbox.tensor(xt[s:s + 500])).argmax(-1).numpy() == yt[s:s + 500]).sum())
    return correct / max(1, len(xt)), seconds, steps


def run_compare(title: str, variants: list, build_model, make_optimizer, data, epochs: int, batch_size: int,
                verbose: bool = True, loss_fn=None) -> list:
    """Train once per ``(label, context manager factory)`` and print a table; returns the rows."""
    rows = []
    if verbose:
        print(f"\n{title}", flush=True)
        print(f"  {'run':<34} {'test accuracy':>13} {'train time':>11} {'per step':>10}", flush=True)
    ref_time = None
    for label, ctx in variants:
        try:
            with ctx():
                # one untimed step first: imports, compiled kernels and caches warm up outside the timing
                x, y, xt, yt = data
                _fit(build_model, make_optimizer, (x[:batch_size], y[:batch_size], xt[:1], yt[:1]), 1, batch_size,
                     loss_fn=loss_fn)
                acc, secs, steps = _fit(build_model, make_optimizer, data, epochs, batch_size, loss_fn=loss_fn)
        except Exception as e:  # the student's code failed inside the model: say so, keep the table
            rows.append({"run": label, "error": f"{type(e).__name__}: {e}"})
            if verbose:
                print(f"  {label:<34} failed: {type(e).__name__}: {e}", flush=True)
            continue
        row = {"run": label, "accuracy": acc, "seconds": secs, "steps": steps, "ms_per_step": 1000 * secs / steps}
        if ref_time is None:
            ref_time = secs
        else:
            row["time_ratio"] = secs / ref_time
        rows.append(row)
        if verbose:
            ratio = f"  ({row['time_ratio']:.1f}x the reference's time)" if "time_ratio" in row else ""
            print(f"  {label:<34} {acc:>13.4f} {secs:>10.1f}s {row['ms_per_step']:>8.1f}ms{ratio}", flush=True)
    return rows


def _data(train_size, default_train, test_size=1000):
    n = int(train_size) if train_size else default_train
    return load_mnist(n, min(test_size, max(200, n // 2)))


def _adam(lr=1e-3):
    import deepbox

    return lambda params: deepbox.optim.Adam(params, lr=lr)


def _student_ctx(ex, student, part_title):
    from deepbox.exercises.swap import patched

    return lambda: patched(ex.swap(student, part_title))


def train_mlp(ex, student, parts, train_size=None, epochs=None, verbose=True, hidden=(128,), dropout=0.0,
              batch_norm=False, activation: str = "relu") -> list:
    """A 784-128-10 MLP (with dropout or batch norm when the exercise is about them) on MNIST-10k."""
    from deepbox import nn

    def build():
        layers = [nn.Flatten()]
        width = 784
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU() if activation == "relu" else nn.Sigmoid())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 10))
        return nn.Sequential(*layers)

    data = _data(train_size, 3000)
    epochs = epochs or 2
    variants = [("deepbox's own (reference)", contextlib.nullcontext)]
    variants += [(f"yours: {p.title.split(' (')[0]}", _student_ctx(ex, student, p.title)) for p in parts]
    desc = "+".join([f"{len(data[0])} digits"])
    title = (f"{ex.name} --train: MLP 784-{'-'.join(map(str, hidden))}-10 ({activation})"
             f"{' with dropout' if dropout else ''}{' with batch norm' if batch_norm else ''}, Adam, "
             f"{desc}, {epochs} epochs (test: {len(data[2])} digits)")
    return run_compare(title, variants, build, _adam(), data, epochs, 64, verbose)


def train_lenet(ex, student, parts, train_size=None, epochs=None, verbose=True) -> list:
    """LeNet-5 on MNIST-10k digits with the student's piece in every layer it replaces."""
    from deepbox.models import lenet5

    data = _data(train_size, 3000)
    epochs = epochs or 2
    variants = [("deepbox's own (reference)", contextlib.nullcontext)]
    variants += [(f"yours: {p.title.split(' (')[0]}", _student_ctx(ex, student, p.title)) for p in parts]
    title = (f"{ex.name} --train: LeNet-5, Adam, {len(data[0])} digits, {epochs} epoch(s) "
             f"(test: {len(data[2])} digits)")
    return run_compare(title, variants, lambda: lenet5(), _adam(), data, epochs, 64, verbose)


def train_row_model(ex, student, parts, cell: str, train_size=None, epochs=None, verbose=True) -> list:
    """The row-LSTM (or a row-RNN): each image is 28 steps of 28 pixels; the last hidden state is classified."""
    from deepbox import nn

    class RowModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(28, 64, batch_first=True) if cell == "lstm" else nn.RNN(28, 64, batch_first=True)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            out = self.rnn(x.squeeze(1))[1]
            h = out[0] if cell == "lstm" else out
            return self.fc(h[-1])

    data = _data(train_size, 3000)
    epochs = epochs or 2
    variants = [("deepbox's own (reference)", contextlib.nullcontext)]
    variants += [(f"yours: {p.title.split(' (')[0]}", _student_ctx(ex, student, p.title)) for p in parts]
    title = (f"{ex.name} --train: row-{cell.upper()} (hidden 64), Adam lr 3e-3, {len(data[0])} digits, "
             f"{epochs} epoch(s) (test: {len(data[2])} digits)")
    return run_compare(title, variants, RowModel, _adam(3e-3), data, epochs, 64, verbose)


def train_optimizer(ex, student, parts, make_optimizer, train_size=None, epochs=None, verbose=True) -> list:
    """The MLP 784-128-10 trained by deepbox's optimiser and by the student's."""
    from deepbox import nn

    data = _data(train_size, 3000)
    epochs = epochs or 2
    variants = [("deepbox's own (reference)", contextlib.nullcontext)]
    variants += [(f"yours: {p.title.split(' (')[0]}", _student_ctx(ex, student, p.title)) for p in parts]
    build = lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    title = (f"{ex.name} --train: MLP 784-128-10, {len(data[0])} digits, {epochs} epochs "
             f"(test: {len(data[2])} digits)")
    return run_compare(title, variants, build, make_optimizer, data, epochs, 64, verbose)


def train_report(ex, report, train_size=None, epochs=None, verbose=True) -> list:
    """Run the exercise's training comparison with the parts whose checks passed."""
    from deepbox.exercises.swap import implemented_parts

    if ex.train is None:
        if verbose:
            print(f"\n{ex.name} --train: this exercise has no training run (its checks are the whole exercise)")
        return []
    parts = [p for p in implemented_parts(ex, report) if p.swap_ok]
    if not parts:
        if verbose:
            print(f"\n{ex.name} --train: skipped: the checks must pass first (a wrong piece trains nothing useful)")
        return []
    return ex.train(ex, report.student, parts, train_size=train_size, epochs=epochs, verbose=verbose)

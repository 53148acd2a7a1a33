"""Shared plumbing for the lecture walk-throughs in ``examples/``: arguments, data, plots, small loops.

Each walk-through is a script ``examples/lNN_topic.py`` with a ``main(argv) -> dict`` that prints its
key result, writes its plots (PNG) and a ``results.json`` into ``--out`` (default
``./runs/examples/<name>``), and returns the numbers so that the test suite can check the claim.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The walk-throughs' common arguments: ``--quick``, ``--out``, ``--seed``."""
    ap = argparse.ArgumentParser(prog=f"{name}.py", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tiny run (seconds): the smoke test the test suite uses")
    ap.add_argument("--out", default=None, help=f"folder for plots and results (default ./runs/examples/{name})")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def setup(args, name: str) -> Path:
    """Seed everything and create the output folder."""
    deepbox.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out) if args.out else Path("runs") / "examples" / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def finish(out: Path, results: dict) -> dict:
    """Write ``results.json`` next to the plots and return the results."""
    with open(out / "results.json", "w") as f:
        json.dump(results, f, indent=2, default=float)
    print(f"plots and results.json in {out}")
    return results


# ----------------------------------------------------------------------------- data


def data_dir() -> Path:
    """``$DEEPBOX_DATA``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("DEEPBOX_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_mnist10k(n_train: int = 8000, n_test: int = 2000):
    """MNIST-10k: the first ``n_train`` images for training, the last ``n_test`` for testing.

    Returns float32 arrays in [0, 1] of shape (N, 1, 28, 28) and int64 labels.
    """
    path = data_dir() / "mnist-10k.npz"
    if not path.exists():
        raise SystemExit(f"MNIST-10k not found at {path}; set DEEPBOX_DATA to the folder holding mnist-10k.npz")
    with np.load(path) as z:
        x, y = z["images"], z["labels"]
    x = x.astype(np.float32)[:, None] / 255.0
    y = y.astype(np.int64)
    return x[:n_train], y[:n_train], x[len(x) - n_test:], y[len(y) - n_test:]


def load_fashion(n_train: int = 10000, n_test: int = 2000):
    """The first ``n_train`` training and ``n_test`` test images of the Fashion-MNIST subset embedded in deepbox
    (20k train, 2k test; the first 10k are the earlier subset), as float32 (N, 1, 28, 28) in [0, 1]."""
    from deepbox.vision.datasets import EmbeddedFashionMNIST

    tr, te = EmbeddedFashionMNIST(train=True), EmbeddedFashionMNIST(train=False)

    def arrays(ds, n):
        x = np.asarray(ds.data.numpy(), dtype=np.float32)[:n, None] / 255.0
        return x, np.asarray(ds.targets.numpy(), dtype=np.int64)[:n]

    return (*arrays(tr, n_train), *arrays(te, n_test))


def load_digits():
    """scikit-learn's 8x8 digits as float32 (1797, 64) in [0, 1] and int64 labels."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError:
        raise SystemExit("this walk-through uses scikit-learn's digits: pip install scikit-learn") from None
    d = _load()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


# ----------------------------------------------------------------------------- loops


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index arrays covering ``range(n)`` in batches, shuffled when ``rng`` is given."""
    idx = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch_size):
        yield idx[i:i + batch_size]


def train_epoch(model, opt, x: np.ndarray, y: np.ndarray, batch_size: int, rng, loss_fn=F.cross_entropy,
                transform=None, clip: float | None = None, scheduler=None) -> list[float]:
    """One pass over (x, y) with minibatch updates; returns each step's loss."""
    model.train()
    losses = []
    for idx in batches(len(x), batch_size, rng):
        xb = x[idx] if transform is None else transform(x[idx], rng)
        loss = loss_fn(model(deepbox.from_numpy(xb)), deepbox.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            deepbox.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss))
    return losses


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500, loss_fn=F.cross_entropy):
    """(mean loss, accuracy) over (x, y) in eval mode, without a graph."""
    model.eval()
    total, correct = 0.0, 0
    with deepbox.no_grad():
        for idx in batches(len(x), batch_size):
            out = model(deepbox.from_numpy(x[idx]))
            total += float(loss_fn(out, deepbox.from_numpy(y[idx]), reduction="sum"))
            correct += int((out.argmax(1).numpy() == y[idx]).sum())
    model.train()
    return total / len(x), correct / len(x)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


# ----------------------------------------------------------------------------- pictures


def plt():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_fig(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt().close(fig)


def save_grid(images: np.ndarray, path: Path, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """Tile (N, 1, H, W) or (N, H, W) images in [0, 1] into one PNG; returns the tiled array."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 4:
        a = a[:, 0]
    n, h, w = a.shape
    ncol = nrow
    rows = (n + ncol - 1) // ncol
    grid = np.ones((rows * (h + pad) + pad, ncol * (w + pad) + pad), np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = a[i]
    img = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    try:
        from PIL import Image

        Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(path)
    except ImportError:
        pyplot = plt()
        pyplot.imsave(path, img, cmap="gray")
    return grid

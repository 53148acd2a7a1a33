"""Pictures of training and of what a network learnt, written as PNG files with matplotlib.

Each function takes plain data (a history dict, a matrix, arrays or tensors), draws one
figure with matplotlib's Agg backend (no display needed), saves it to ``path`` and closes it,
and returns ``path``. matplotlib is one of deepbox's dependencies.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_history", "plot_confusion_matrix", "plot_predictions", "plot_filters", "plot_feature_maps"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("deepbox.viz needs matplotlib, which is not installed; install it with "
                          "pip install matplotlib") from None
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _array(x) -> np.ndarray:
    data = getattr(x, "_data", None)
    return np.asarray(x if data is None else data)


def _save(fig, path, tight: bool = True) -> str:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # written beside the target and renamed, so a reader never sees half a PNG
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight" if tight else None)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def plot_history(history: dict, path, val_label: str = "validation") -> str:
    """Loss (left) and accuracy (right, when recorded) per epoch, training and ``val_*`` curves.

    Args:
        history: ``Trainer.history``: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` lists.
        path: the PNG file to write.
        val_label: the legend of the ``val_*`` curves ("validation", or "test" when the
            held-out set is the test set).
    """
    plt = _pyplot()
    if not history.get("loss"):
        raise ValueError("plot_history needs a history with a non-empty 'loss' list")
    panels = [("loss", "loss")]
    if "accuracy" in history or "val_accuracy" in history:
        panels.append(("accuracy", "accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for name, label, style in ((key, "training", "-o"), (f"val_{key}", val_label, "-s")):
            values = history.get(name)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        if len(history["loss"]) < 15:
            ax.set_xticks(range(1, len(history["loss"]) + 1))
    return _save(fig, path)


def plot_confusion_matrix(matrix, path, classes: list[str] | None = None, normalize: bool = True,
                          title: str = "confusion matrix") -> str:
    """A heat map of ``matrix[true, predicted]`` with the counts (and row percentages) written in.

    Args:
        matrix: (C, C) counts, rows the true classes.
        classes: the class names (default 0..C-1).
        normalize: colour by the share of each true class rather than by count.
    """
    plt = _pyplot()
    m = _array(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"plot_confusion_matrix needs a square (C, C) matrix, got shape {m.shape}")
    k = m.shape[0]
    classes = [str(c) for c in (classes if classes is not None else range(k))]
    if len(classes) != k:
        raise ValueError(f"plot_confusion_matrix got {len(classes)} class names for a {k}x{k} matrix")
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
    side = max(4.5, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(share if normalize else m, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class" if normalize else "count")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                dark = share[i, j] > 0.5 if normalize else m[i, j] > m.max() / 2
                ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7 if k > 12 else 8,
                        color="white" if dark else "black")
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(classes, rotation=45, ha="right")
        ax.set_yticklabels(classes)
    total = m.sum()
    acc = np.trace(m) / total if total else float("nan")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (accuracy {acc:.1%})")
    return _save(fig, path)


def _image_grid_array(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """One image (C, H, W) or (H, W) as something imshow draws, and its colour map."""
    if img.ndim == 3 and img.shape[0] in (1, 3, 4):
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    if img.ndim == 2:
        return img, "gray"
    if img.dtype != np.uint8:  # float colour images: scale into [0, 1] for imshow
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img, None


def plot_predictions(images, predicted, true, path, classes: list[str] | None = None, probabilities=None,
                     cols: int = 8, max_images: int = 32) -> str:
    """A grid of images titled with the predicted and the true label (red where they differ).

    Args:
        images: (N, C, H, W) or (N, H, W) images (uint8, or floats of any range).
        predicted, true: (N,) class indices.
        probabilities: (N,) the predicted class's probability, shown next to it.
        cols, max_images: the grid's width and how many images to draw.
    """
    plt = _pyplot()
    imgs, pred, tgt = _array(images), _array(predicted).astype(int), _array(true).astype(int)
    if not (len(imgs) == len(pred) == len(tgt)):
        raise ValueError(f"plot_predictions got {len(imgs)} images, {len(pred)} predictions and {len(tgt)} labels; "
                         "expected as many of each")
    n = min(len(imgs), max_images)
    if n == 0:
        raise ValueError("plot_predictions needs at least one image")
    probs = None if probabilities is None else _array(probabilities)
    names = (lambda i: str(classes[i]) if classes is not None and 0 <= i < len(classes) else str(i))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    # one mosaic drawn by one imshow: a grid of 32 axes takes matplotlib seconds to lay out
    tiles = [_image_grid_array(imgs[i]) for i in range(n)]
    h, w = tiles[0][0].shape[:2]
    colour = tiles[0][0].ndim == 3
    gap, band = max(2, w // 8), max(h // 2, 10)  # the band above each tile holds its two-line label
    cell_h, cell_w = band + h + gap, w + gap
    mosaic = np.ones((rows * cell_h, cols * cell_w) + ((3,) if colour else ()), dtype=np.float64)
    for i, (img, _) in enumerate(tiles):
        r, c = divmod(i, cols)
        x = img.astype(np.float64)
        if not colour:  # grey: 0..255 for uint8, else stretched per image
            lo, hi = (0.0, 255.0) if img.dtype == np.uint8 else (float(x.min()), float(x.max()))
            x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        elif img.dtype == np.uint8:
            x = x / 255.0
        mosaic[r * cell_h + band:r * cell_h + band + h, c * cell_w:c * cell_w + w] = x[..., :3] if colour else x
    fig, ax = plt.subplots(figsize=(1.25 * cols * (w + gap) / 28, 1.25 * rows * cell_h / 28 + 0.4))
    # white gaps and label bands between the tiles; each tile keeps its own grey levels
    ax.imshow(mosaic, cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, cols)
        ok = pred[i] == tgt[i]
        p = f" {probs[i]:.0%}" if probs is not None else ""
        ax.text(c * cell_w + w / 2, r * cell_h + band - 1, f"{names(pred[i])}{p}\n(true: {names(tgt[i])})",
                ha="center", va="bottom", fontsize=6.5, color="black" if ok else "red")
    ax.axis("off")
    correct = int((pred[:n] == tgt[:n]).sum())
    ax.set_title(f"predicted (true) - {correct}/{n} correct", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)
    return _save(fig, path, tight=False)


def plot_filters(weight, path, max_filters: int = 64, title: str = "filters") -> str:
    """The kernels of a convolution, one small image per (output channel, first input channel).

    Args:
        weight: a conv weight (O, I, kH, kW) (a Parameter, tensor or array); 3-channel kernels
            are drawn in colour, others show input channel 0.
    """
    plt = _pyplot()
    w = _array(weight).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"plot_filters needs a conv weight (O, I, kH, kW), got shape {w.shape}")
    n = min(w.shape[0], max_filters)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        k = w[i]
        if k.shape[0] == 3:
            img = k.transpose(1, 2, 0)
            img = (img - img.min()) / (np.ptp(img) or 1.0)
            axes.flat[i].imshow(img)
        else:
            lim = np.abs(k[0]).max() or 1.0
            axes.flat[i].imshow(k[0], cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(f"{title} ({w.shape[0]}x{w.shape[1]}x{w.shape[2]}x{w.shape[3]})", fontsize=10)
    return _save(fig, path)


def plot_feature_maps(activations, path, max_maps: int = 32, title: str = "feature maps") -> str:
    """The channels of one layer's output for one input, one image per channel.

    Args:
        activations: (C, H, W) or (1, C, H, W) (for example a forward hook's output).
    """
    plt = _pyplot()
    a = _array(activations)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"plot_feature_maps needs (C, H, W) activations of one input, got shape {a.shape}")
    n = min(a.shape[0], max_maps)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.4 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        axes.flat[i].imshow(a[i], cmap="viridis")
        axes.flat[i].set_title(str(i), fontsize=7)
    fig.suptitle(f"{title} ({a.shape[0]} channels, {a.shape[1]}x{a.shape[2]})", fontsize=10)
    return _save(fig, path)

"""Lecture 10 (II) — semantic segmentation with a small U-Net on synthetic shapes.

What it demonstrates: ``deepbox.models.UNet`` (Ronneberger, Fischer & Brox, MICCAI 2015: an
encoder-decoder with skip connections that concatenate encoder features into the decoder) trained
with per-pixel cross-entropy to label every pixel of noisy images as background, disc, square or
triangle. The shapes are drawn at random (position, size, overlap, grey level) so the network must
use shape, not intensity. Prints pixel accuracy and per-class / mean intersection-over-union on
freshly drawn test images, and saves input / truth / prediction panels.

    python examples/l10_unet_shapes.py [--quick] [--out DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox.models import UNet  # noqa: E402
from examples._course import finish, parser, plt, save_fig, setup  # noqa: E402

NAME = "l10_unet_shapes"
CLASSES = ["background", "disc", "square", "triangle"]


def make_shapes(n: int, side: int, rng, max_shapes: int = 3):
    """``n`` noisy grey images (n, 1, side, side) and their masks (n, side, side) of class indices."""
    yy, xx = np.mgrid[0:side, 0:side]
    images = np.zeros((n, 1, side, side), np.float32)
    masks = np.zeros((n, side, side), np.int64)
    for i in range(n):
        img = np.full((side, side), rng.uniform(0.0, 0.3), np.float32)
        for _ in range(rng.integers(1, max_shapes + 1)):
            cls = rng.integers(1, 4)
            r = rng.uniform(side / 10, side / 5)
            cy, cx = rng.uniform(r, side - r, 2)
            if cls == 1:
                m = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            elif cls == 2:
                m = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
            else:  # upright triangle: apex at the top, widening downwards
                m = (yy >= cy - r) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - (cy - r)) / 2)
            img[m] = rng.uniform(0.5, 1.0)
            masks[i][m] = cls
        images[i, 0] = img + rng.normal(0, 0.08, (side, side)).astype(np.float32)
    return images, masks


def iou_per_class(pred: np.ndarray, true: np.ndarray, k: int) -> np.ndarray:
    out = np.full(k, np.nan)
    for c in range(k):
        union = np.sum((pred == c) | (true == c))
        if union:
            out[c] = np.sum((pred == c) & (true == c)) / union
    return out


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--n-train", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--base", type=int, default=8)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    if args.quick:
        args.side, args.n_train, args.epochs, args.base = 16, 96, 8, 4
    rng = np.random.default_rng(args.seed)
    x, m = make_shapes(args.n_train, args.side, rng)
    xte, mte = make_shapes(64 if args.quick else 256, args.side, rng)

    model = UNet(in_channels=1, num_classes=len(CLASSES), base=args.base, depth=2)
    opt = deepbox.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for epoch in range(args.epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(x)), max(len(x) // 16, 1)):
            loss = F.cross_entropy(model(deepbox.from_numpy(x[idx])), deepbox.from_numpy(m[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        print(f"epoch {epoch + 1}: training loss {np.mean(losses[-max(len(x) // 16, 1):]):.4f}")
    model.eval()
    with deepbox.no_grad():
        pred = np.concatenate([model(deepbox.from_numpy(xte[i:i + 64])).argmax(1).numpy()
                               for i in range(0, len(xte), 64)])
    pix_acc = float((pred == mte).mean())
    ious = iou_per_class(pred, mte, len(CLASSES))
    background_only = float((mte == 0).mean())
    print(f"test pixel accuracy {pix_acc:.4f} (all-background guess: {background_only:.4f}); IoU "
          + ", ".join(f"{c} {v:.3f}" for c, v in zip(CLASSES, ious)) + f"; mean IoU {np.nanmean(ious):.4f}")

    pyplot = plt()
    k = 6
    fig, ax = pyplot.subplots(3, k, figsize=(2 * k, 6.3))
    for j in range(k):
        ax[0, j].imshow(xte[j, 0], cmap="gray")
        ax[1, j].imshow(mte[j], cmap="tab10", vmin=0, vmax=9)
        ax[2, j].imshow(pred[j], cmap="tab10", vmin=0, vmax=9)
        for r in range(3):
            ax[r, j].axis("off")
    for r, t in enumerate(("input", "truth", "U-Net")):
        ax[r, 0].set_title(t, loc="left")
    save_fig(fig, out / "segmentations.png")
    return finish(out, {"pixel_acc": pix_acc, "background_fraction": background_only,
                        "iou": dict(zip(CLASSES, map(float, ious))), "mean_iou": float(np.nanmean(ious)),
                        "first_loss": losses[0], "final_loss": float(np.mean(losses[-5:]))})


if __name__ == "__main__":
    main()

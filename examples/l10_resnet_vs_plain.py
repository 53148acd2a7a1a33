"""Lecture 10 (I) — why residual connections: a ResNet against a plain CNN of the same depth.

What it demonstrates: the degradation problem of He, Zhang, Ren & Sun ("Deep Residual Learning for
Image Recognition", CVPR 2016, Fig. 1 and 6): a deep plain stack of conv-BN-ReLU layers trains
worse than the same stack with identity shortcuts, even on the training set. Both networks here
are CIFAR-style (3 stages of ``n`` two-convolution blocks, 6n + 2 layers; ``deepbox.models.ResNet``
with option-A shortcuts, and the same blocks without shortcuts), same widths, same initialisation
scheme, same minibatches, same optimiser (SGD + momentum), on MNIST-10k. The key number is the
training loss after the same number of steps; the test accuracy is printed beside it.

    python examples/l10_resnet_vs_plain.py [--quick] [--out DIR] [--blocks N] [--steps S]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.models import ResNet  # noqa: E402
from examples._course import evaluate, finish, load_mnist10k, parser, plt, save_fig, setup  # noqa: E402

NAME = "l10_resnet_vs_plain"


class PlainNet(nn.Module):
    """``ResNet``'s layers with every shortcut removed: conv-BN-ReLU, 2 per block, 6n + 2 layers in all."""

    def __init__(self, num_blocks, widths, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        layers = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
        c = widths[0]
        for i, (n, w) in enumerate(zip(num_blocks, widths)):
            for j in range(2 * n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers += [nn.Conv2d(c, w, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
                c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():  # the ResNet's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def train(model, x, y, steps: int, batch: int, lr: float, seed: int):
    opt = deepbox.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    while len(losses) < steps:
        for idx in np.array_split(rng.permutation(len(x)), len(x) // batch):
            loss = F.cross_entropy(model(deepbox.from_numpy(x[idx])), deepbox.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            if len(losses) == steps:
                break
    return losses


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--blocks", type=int, default=3, help="blocks per stage n: depth 6n + 2 (3: 20 layers)")
    ap.add_argument("--width", type=int, default=8, help="channels of the first stage (then 2x, 4x)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--side", type=int, default=28, choices=(14, 28),
                    help="image side: 14 averages 2x2 pixels, 4x cheaper (for deep runs)")
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    x, y, xte, yte = load_mnist10k(8000, 2000)
    if args.quick:  # 14x14 digits keep the smoke test to seconds
        args.blocks, args.width, args.steps, args.batch_size, args.side = 3, 4, 40, 32, 14
        xte, yte = xte[:300], yte[:300]
    if args.side == 14:
        x = x.reshape(-1, 1, 14, 2, 14, 2).mean((3, 5))
        xte = xte.reshape(-1, 1, 14, 2, 14, 2).mean((3, 5))
    x, xte = (x - 0.1307) / 0.3081, (xte - 0.1307) / 0.3081
    depth = 6 * args.blocks + 2
    widths = (args.width, 2 * args.width, 4 * args.width)
    blocks = (args.blocks,) * 3
    results = {}
    for name, build in (("plain", lambda: PlainNet(blocks, widths)),
                        ("resnet", lambda: ResNet(blocks, widths, 1, 10, shortcut="A"))):
        deepbox.manual_seed(args.seed)
        model = build()
        losses = train(model, x, y, args.steps, args.batch_size, args.lr, args.seed)
        k = max(args.steps // 4, 1)
        test_loss, test_acc = evaluate(model, xte, yte, batch_size=250)
        results[name] = {"losses": losses, "final_train_loss": float(np.mean(losses[-k:])), "test_acc": test_acc,
                         "parameters": sum(p.numel() for p in model.parameters())}
        print(f"{name:>6} ({depth} layers, {results[name]['parameters']:,} parameters): training loss over the last "
              f"{k} of {args.steps} steps {results[name]['final_train_loss']:.4f}, test accuracy {test_acc:.4f}")

    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        c = np.convolve(r["losses"], np.ones(10) / 10, mode="valid") if len(r["losses"]) > 10 else r["losses"]
        ax.plot(c, label=f"{name}-{depth}")
    ax.set(xlabel="SGD step", ylabel="training loss (moving average of 10)", yscale="log",
           title=f"{depth}-layer plain CNN vs ResNet on MNIST-10k")
    ax.legend()
    save_fig(fig, out / "resnet_vs_plain.png")
    return finish(out, {"depth": depth, "steps": args.steps,
                        **{n: {k: v for k, v in r.items() if k != "losses"} for n, r in results.items()}})


if __name__ == "__main__":
    main()

"""Looking inside a CNN: first-layer filters, the feature maps of one image, activation statistics.

What it demonstrates: forward hooks (``Module.register_forward_hook``) capture every layer's
output without touching the model's code. A LeNet-5 (or the BN ``convnet``) is trained briefly
on Fashion-MNIST, or loaded from a run folder written by ``deepbox train``; then one test image
goes through it with a hook on every layer, and the example writes

* ``input.png``: the image;
* ``filters.png``: the first convolution's kernels;
* ``feature_maps_<layer>.png``: what each convolution (after its ReLU) makes of the image;

and prints, over a batch of test images, each layer's output shape, mean, standard deviation,
fraction of exact zeros and the channels or units that never fire (dead ReLUs).

    python examples/look_inside.py [--quick] [--out DIR] [--model lenet5|convnet] [--run RUN_FOLDER]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.models import get_model  # noqa: E402
from examples._course import Timer, evaluate, finish, parser, setup, train_epoch  # noqa: E402

NAME = "look_inside"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
HOOKED = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Linear)


def load_fashion(n_train: int, n_test: int):
    from deepbox.vision.datasets import load_dataset

    def arrays(ds, k):
        return np.asarray(ds.data._data)[:k], np.asarray(ds.targets._data, dtype=np.int64)[:k]

    tr, te = load_dataset("fashion-mnist", train=True), load_dataset("fashion-mnist", train=False)
    return (*arrays(tr, n_train), *arrays(te, n_test)), tr.source


def from_run(run: str):
    """The model and its normalisation (mean, std) from a ``deepbox train`` run folder."""
    from deepbox.io import load

    state = load(str(Path(run) / "checkpoint.safetensors"))
    cfg = state["extra"]
    model = get_model(cfg["model"]["name"], **cfg["model"]["kwargs"])
    model.load_state_dict(state["model"])
    return model, float(cfg["data"]["mean"][0]), float(cfg["data"]["std"][0]), cfg["model"]["name"]


def capture(model, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every hooked layer's output for the batch ``x``, by module name (hooks removed afterwards)."""
    acts: dict[str, np.ndarray] = {}

    def hook_for(name):
        def hook(module, inputs, output):
            acts[name] = output.detach().numpy().copy()
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in model.named_modules()
               if isinstance(m, HOOKED)]
    try:
        model.eval()
        with deepbox.no_grad():
            logits = model(deepbox.from_numpy(x)).numpy()
    finally:
        for h in handles:
            h.remove()
    return acts, logits


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--model", default="lenet5", help="lenet5 or convnet (ignored with --run)")
    ap.add_argument("--run", default=None, help="a run folder of 'deepbox train' to inspect instead of training")
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--image", type=int, default=0, help="index of the test image to look at")
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    if args.quick:
        args.train_size, args.epochs = 1500, 1
    (x, y, xte, yte), source = load_fashion(args.train_size, 1000 if args.quick else 2000)

    if args.run:
        model, mean, std, args.model = from_run(args.run)
        print(f"loaded {args.model} from {args.run}")
        trained = "loaded"
    else:
        xf = x.astype(np.float32)[:, None] / 255.0
        mean, std = float(xf.mean()), float(xf.std())
        model = get_model(args.model)
        opt = deepbox.optim.Adam(model.parameters(), lr=2e-3)
        rng = np.random.default_rng(args.seed)
        with Timer() as t:
            for _ in range(args.epochs):
                train_epoch(model, opt, (xf - mean) / std, y, 64, rng)
        trained = f"{args.epochs} epoch(s) on {len(x):,} images ({t.seconds:.0f} s)"
        print(f"trained {args.model}: {trained} from {source}")
    xt = (xte.astype(np.float32)[:, None] / 255.0 - mean) / std
    acc = evaluate(model, xt, yte)[1]
    print(f"test accuracy {acc:.4f} on {len(xt):,} images")

    # one image through the hooked model
    i = args.image
    acts, logits = capture(model, xt[i:i + 1])
    shapes = {name: list(a.shape) for name, a in acts.items()}
    pred = int(logits.argmax(1)[0])
    print(f"image {i}: {CLASSES[yte[i]]}, predicted {CLASSES[pred]}; captured {len(acts)} layer outputs")
    first_conv_name, first_conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))

    from deepbox import viz

    plt = viz.plots._pyplot()
    fig, ax = plt.subplots(figsize=(2.5, 2.8))
    ax.imshow(xte[i], cmap="gray")
    ax.set_title(f"{CLASSES[yte[i]]} (predicted {CLASSES[pred]})", fontsize=8)
    ax.axis("off")
    written = [viz.plots._save(fig, out / "input.png")]
    written.append(viz.plot_filters(first_conv.weight, out / "filters.png",
                                    title=f"{args.model} {first_conv_name} filters"))
    # each convolution's output after its activation: the ReLU that follows it in module order
    names = list(acts)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and name in acts:
            after = next((n for n in names[names.index(name) + 1:] if isinstance(model.get_submodule(n), nn.ReLU)),
                         name)
            written.append(viz.plot_feature_maps(acts[after][0], out / f"feature_maps_{name.replace('.', '_')}.png",
                                                 title=f"{name} -> {after} on image {i}"))

    # activation statistics over a batch
    batch = xt[:256]
    bacts, _ = capture(model, batch)
    stats = {}
    print(f"\nactivations over {len(batch)} test images")
    print(f"{'layer':<16}{'type':<12}{'shape':<18}{'mean':>9}{'std':>9}{'zeros':>8}{'dead':>10}")
    for name, a in bacts.items():
        kind = type(model.get_submodule(name)).__name__
        per_unit = a.reshape(a.shape[0], a.shape[1], -1).max(axis=(0, 2))  # channel or unit max over the batch
        dead = int((per_unit <= 0).sum()) if kind == "ReLU" else 0
        stats[name] = {"type": kind, "shape": list(a.shape[1:]), "mean": float(a.mean()), "std": float(a.std()),
                       "zero_fraction": float((a == 0).mean()), "dead_units": dead, "units": int(a.shape[1])}
        s = stats[name]
        print(f"{name:<16}{kind:<12}{str(tuple(s['shape'])):<18}{s['mean']:>9.3f}{s['std']:>9.3f}"
              f"{s['zero_fraction']:>8.1%}{(f'{dead}/{a.shape[1]}' if kind == 'ReLU' else '-'):>10}")

    # a removed hook no longer fires
    after_removal: dict = {}
    h = first_conv.register_forward_hook(lambda m, i_, o: after_removal.setdefault("n", 0))
    h.remove()
    with deepbox.no_grad():
        model(deepbox.from_numpy(batch[:1]))
    print(f"\nwrote {', '.join(Path(w).name for w in written)}")
    return finish(out, {
        "model": args.model, "trained": trained, "test_accuracy": acc, "image": i, "label": int(yte[i]),
        "predicted": pred, "hook_shapes": shapes, "stats": stats, "pngs": [Path(w).name for w in written],
        "hook_fired_after_remove": bool(after_removal),
    })


if __name__ == "__main__":
    main()

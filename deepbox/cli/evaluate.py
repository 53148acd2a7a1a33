"""``deepbox eval`` and ``deepbox predict``: a trained run on a test split or on image files."""
from __future__ import annotations

import os

import numpy as np

from deepbox.cli.common import CLIError, load_data, restore_model, say

__all__ = ["add_parsers", "cmd_eval", "cmd_predict"]


def add_parsers(sub, common) -> None:
    e = sub.add_parser("eval", parents=[common], help="evaluate a trained run on a test set")
    e.add_argument("run", help="a run folder written by 'deepbox train'")
    e.add_argument("--data", help="evaluate on this dataset's test split instead of the run's")
    e.add_argument("--batch-size", type=int, default=500)
    e.add_argument("--limit-test", type=int, help="use only the first N test images")
    e.set_defaults(func=cmd_eval)

    pr = sub.add_parser("predict", parents=[common], help="classify image files with a trained run",
                        description="Classify PNG/JPEG images. Each image is converted to the model's channels "
                                    "(grey or RGB) and resized (bilinear) to the model's input size, then normalised "
                                    "as in training. Fashion-MNIST shows light objects on a black background: "
                                    "pass --invert for dark objects on a light background.")
    pr.add_argument("run", help="a run folder written by 'deepbox train'")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    pr.add_argument("--top-k", type=int, default=3, help="how many classes to list per image (default 3)")
    pr.add_argument("--invert", action="store_true", help="invert the grey levels first (dark-on-light images)")
    pr.set_defaults(func=cmd_predict)


def cmd_eval(args) -> int:
    import deepbox
    from deepbox import nn
    from deepbox.cli.data import class_names, normalise
    from deepbox.train import F1, Accuracy, Trainer

    if args.limit_test is not None and args.limit_test < 1:
        raise CLIError(f"--limit-test {args.limit_test}: expected a positive integer")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size {args.batch_size}: expected a positive integer")
    model, run_cfg = restore_model(args.run)
    dcfg = run_cfg["data"]
    name = args.data or dcfg["name"]
    data = load_data(name, None, args.limit_test)
    try:
        class_names(list(dcfg["classes"]), data.classes, "")
    except ValueError:
        raise CLIError(f"dataset {name!r} has the classes {', '.join(data.classes)} but the model in {args.run} was "
                       f"trained on {', '.join(map(str, dcfg['classes']))}; expected data with the same classes in "
                       "the same order") from None
    shape = list(data.x_test.shape[1:])
    if shape != list(dcfg["input_shape"]):
        raise CLIError(f"dataset {name!r} has images of shape {shape} (C, H, W) but the model in {args.run} was "
                       f"trained on {dcfg['input_shape']}; expected a dataset like {dcfg['name']!r}")
    n_classes = len(dcfg["classes"])
    if data.y_test.size and int(data.y_test.max()) >= n_classes:
        raise CLIError(f"dataset {name!r} has labels up to {int(data.y_test.max())} but the model knows "
                       f"{n_classes} classes")
    x = deepbox.from_numpy(normalise(data.x_test, dcfg["mean"], dcfg["std"]))
    trainer = Trainer(model, _NoOptimizer(), nn.CrossEntropyLoss(), verbose=0, predict_batch_size=args.batch_size)
    r = trainer.evaluate((x, deepbox.from_numpy(data.y_test)), metrics=[Accuracy(), F1(num_classes=n_classes)])
    say(f"{args.run}: {run_cfg['model']['name']} on {name} test split ({len(data.x_test):,} images)")
    say(f"test loss {r['loss']:.4f}  accuracy {r['accuracy']:.2%}  macro F1 {r['f1_macro']:.4f}")
    return 0


class _NoOptimizer:
    """Evaluation needs no optimiser; the Trainer only asks for one."""

    param_groups = [{"lr": 0.0}]


def _read_image(path: str, channels: int, size: tuple[int, int], invert: bool) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise CLIError("'deepbox predict' reads images with Pillow, which is not installed; "
                       "pip install pillow") from None
    if not os.path.isfile(path):
        raise CLIError(f"image {path!r}: no such file; expected a PNG or JPEG file")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise CLIError(f"image {path!r} cannot be read ({e}); expected a PNG or JPEG file") from None
    if invert:
        arr = 255 - arr
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def cmd_predict(args) -> int:
    import deepbox
    from deepbox.cli.data import normalise
    from deepbox.nn import functional as F

    if args.top_k < 1:
        raise CLIError(f"--top-k {args.top_k}: expected a positive integer")
    model, run_cfg = restore_model(args.run)
    dcfg = run_cfg["data"]
    c, h, w = dcfg["input_shape"]
    images = np.stack([_read_image(p, c, (h, w), args.invert) for p in args.images])
    with deepbox.no_grad():
        prob = F.softmax(model(deepbox.from_numpy(normalise(images, dcfg["mean"], dcfg["std"]))), dim=1).numpy()
    classes = dcfg["classes"]
    k = min(args.top_k, prob.shape[1])
    width = max(len(str(c)) for c in classes)
    for path, p in zip(args.images, prob):
        say(path)
        for rank, j in enumerate(np.argsort(-p, kind="stable")[:k], 1):
            say(f"  {rank}. {str(classes[j]):<{width}}  {p[j]:7.2%}")
    return 0


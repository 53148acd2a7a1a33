"""The ``deepbox`` command (also ``python -m deepbox``).

Sub-commands::

    deepbox train [--model NAME] [--data NAME|PATH] [--epochs N] [--batch-size N] [--lr X]
                  [--optimizer NAME] [--weight-decay X] [--augment] [--seed N] [--out DIR]
                  [--resume DIR] [--config FILE] [--workers N] [--limit-train N] [--limit-test N]
    deepbox eval RUN [--data NAME|PATH]
    deepbox predict RUN IMAGE... [--top-k K] [--invert]
    deepbox models | datasets | info

``deepbox train`` with no arguments trains the default model on the Fashion-MNIST subset that
ships with deepbox and writes a run folder (``runs/<date>-<time>-<model>/``) holding:

* ``checkpoint.safetensors``: the whole training state (``deepbox.save``), with the run's
  configuration inside it, so that the model can be rebuilt from this one file;
* ``config.json``: that configuration (model name and arguments, classes, input size,
  normalisation), for people;
* ``history.csv``, ``history.json``: loss and accuracy per epoch;
* ``curves.png``, ``confusion_matrix.png``, ``predictions.png`` (and ``filters.png`` when the
  model starts with a convolution);
* ``results.json``: the final test loss and accuracy.

Bad input (an unknown model or dataset, a run folder without a checkpoint, an unreadable image,
a corrupt dataset file, a bad configuration value) prints one paragraph that names it and says
what was expected, and exits with status 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from deepbox.cli.config import OPTIMIZERS, SCHEDULERS, ConfigError, TrainConfig, load_config_file

__all__ = ["main", "build_parser", "CLIError"]

CHECKPOINT_NAME = "checkpoint.safetensors"
TRAINABLE_TASKS = ("image-classification", "sequence-classification")


class CLIError(Exception):
    """Bad input: printed as one paragraph, exit status 2."""


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    p = argparse.ArgumentParser(
        prog="deepbox", description="deepbox: deep learning from first principles on NumPy.",
        epilog="Run 'deepbox train' to train the default model on the embedded Fashion-MNIST subset.")
    p.add_argument("--debug", action="store_true", default=False, help="show the full traceback of an error")
    p.add_argument("--version", action="version", version=f"deepbox {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", parents=[common], help="train a model and write a run folder",
                       description="Train an image classifier (default: convnet on the embedded Fashion-MNIST "
                                   "subset) and write a run folder with the checkpoint, history and plots.")
    t.add_argument("--model", help="a model of the zoo (see 'deepbox models'); default convnet")
    t.add_argument("--data", help="a dataset name (see 'deepbox datasets') or a path to a .npz file or folder; "
                                  "default fashion-mnist-small")
    t.add_argument("--epochs", type=int, help="epochs in all (default 10)")
    t.add_argument("--batch-size", type=int, help="samples per batch (default 128)")
    t.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    t.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    t.add_argument("--weight-decay", type=float, help="L2 weight decay (default 0)")
    t.add_argument("--momentum", type=float, help="momentum for sgd/rmsprop (default 0.9)")
    t.add_argument("--scheduler", help=f"learning-rate schedule per epoch: {' or '.join(SCHEDULERS)} (default cosine: "
                                       "from --lr down to 0 over the epochs)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (and left-right flips for clothing/CIFAR)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    t.add_argument("--val-split", type=float,
                   help="hold out this fraction of the training set for validation (default 0: the test set is "
                        "evaluated after every epoch, for the curves only)")
    t.add_argument("--limit-train", type=int, help="use only the first N training images")
    t.add_argument("--limit-test", type=int, help="use only the first N test images")
    t.add_argument("--config", help="a YAML or JSON file with any of the options above (flags win)")
    t.add_argument("--out", help="the run folder (default runs/<date>-<time>-<model>)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its checkpoint")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-epoch lines")
    t.set_defaults(func=cmd_train)

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

    m = sub.add_parser("models", parents=[common], help="list the model zoo with parameter counts")
    m.set_defaults(func=cmd_models)
    d = sub.add_parser("datasets", parents=[common], help="list the datasets and where they were found")
    d.set_defaults(func=cmd_datasets)
    i = sub.add_parser("info", parents=[common], help="versions, threads and BLAS")
    i.set_defaults(func=cmd_info)
    return p


def _version() -> str:
    from deepbox import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the ``deepbox`` command; returns the exit status (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except (CLIError, ConfigError) as e:
        if debug:
            raise
        # one paragraph: messages quoted from parsers may carry line breaks
        print(f"deepbox {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepbox {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        from deepbox.train import NonFiniteLossError

        what = "training stopped" if isinstance(e, NonFiniteLossError) else f"failed ({type(e).__name__})"
        print(f"deepbox {args.command}: {what}: {e}\n(run again with --debug for the traceback)", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------------------------- helpers
def _say(text: str = "") -> None:
    print(text, flush=True)


def _write_json(path: str, doc) -> None:
    from deepbox.train.callbacks import _write_atomic

    _write_atomic(path, json.dumps(doc, indent=1) + "\n")


def _model_entry(name: str) -> dict:
    from deepbox.models import list_models, model_info

    try:
        return model_info(name)
    except KeyError:
        raise CLIError(f"unknown model {name!r}; expected one of {', '.join(list_models())} "
                       "(see 'deepbox models')") from None


def _build_model(name: str, kwargs: dict):
    from deepbox.models import get_model

    try:
        return get_model(name, **kwargs)
    except (TypeError, ValueError) as e:
        raise CLIError(f"model {name!r} cannot be built with {kwargs}: {e}") from None


def _model_kwargs(name: str, in_channels: int, num_classes: int, image_size: int) -> dict:
    import inspect

    builder = _model_entry(name)["builder"]
    params = inspect.signature(builder).parameters
    kw = {"in_channels": in_channels, "num_classes": num_classes}
    if "image_size" in params:
        kw["image_size"] = image_size
    return {k: v for k, v in kw.items() if k in params or any(p.kind == p.VAR_KEYWORD for p in params.values())}


def _load_data(name: str, limit_train=None, limit_test=None):
    from deepbox.cli.data import load_image_data

    try:
        return load_image_data(name, limit_train, limit_test)
    except (ValueError, OSError, KeyError) as e:
        # unknown names, missing files, corrupt IDX/npz/image files: the loaders' messages name the file
        msg = str(e).strip("'\"")
        if msg.startswith("unknown dataset"):
            raise CLIError(msg) from None
        raise CLIError(f"dataset {name!r} cannot be loaded: {msg}") from None


def _make_optimizer(cfg: TrainConfig, params):
    from deepbox import optim

    name = cfg.optimizer
    if name == "adam":
        return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _run_folder(model: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join("runs", f"{stamp}-{model}")
    path, n = base, 2
    while os.path.exists(path):
        path, n = f"{base}-{n}", n + 1
    return path


def _read_run(run: str) -> tuple[dict, str, dict]:
    """The run's configuration, checkpoint path and checkpoint, or a CLIError saying what is missing."""
    if not os.path.isdir(run):
        raise CLIError(f"run folder {run!r} does not exist; expected a folder written by 'deepbox train'")
    ckpt = os.path.join(run, CHECKPOINT_NAME)
    if not os.path.isfile(ckpt):
        raise CLIError(f"run folder {run!r} holds no checkpoint ({CHECKPOINT_NAME}); expected a folder written by "
                       "'deepbox train' that finished at least one epoch")
    from deepbox.io import CheckpointError, load

    try:
        state = load(ckpt)
    except (CheckpointError, OSError, ValueError) as e:
        raise CLIError(f"checkpoint {ckpt} cannot be read: {e}") from None
    run_cfg = state.get("extra") if isinstance(state, dict) else None
    if not isinstance(run_cfg, dict) or "model" not in run_cfg or "train" not in run_cfg:
        raise CLIError(f"checkpoint {ckpt} has no run configuration; expected a checkpoint written by 'deepbox train'")
    return run_cfg, ckpt, state


def _restore_model(run: str):
    run_cfg, ckpt, state = _read_run(run)
    if run_cfg.get("task") == "language-model":
        raise CLIError(f"{run} holds a language model ({run_cfg['model']['name']}); 'deepbox eval' and "
                       "'deepbox predict' work on image classifiers (its bits per character are in results.json)")
    model = _build_model(run_cfg["model"]["name"], run_cfg["model"]["kwargs"])
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CLIError(f"checkpoint {ckpt} does not fit model {run_cfg['model']['name']!r}: {e}") from None
    model.eval()
    return model, run_cfg


# ---------------------------------------------------------------------------------------------- train
def _train_config(args) -> tuple[TrainConfig, dict, str | None]:
    """The configuration from defaults, the run being resumed, a file and flags; plus where each came from."""
    where: dict[str, str] = {}
    values = TrainConfig().to_dict()
    resume_dir = args.resume
    if resume_dir:
        run_cfg, _, _ = _read_run(resume_dir)
        values.update(run_cfg["train"])
        where.update({k: f"the resumed run {resume_dir}" for k in run_cfg["train"]})
    if args.config:
        file_values = load_config_file(args.config)
        values.update(file_values)
        where.update({k: f"config file {args.config}" for k in file_values})
    for key in TrainConfig.keys():
        v = getattr(args, key, None)
        if v is not None:
            if resume_dir and key not in ("epochs", "workers") and v != values[key]:
                raise CLIError(f"--{key.replace('_', '-')} {v} differs from the resumed run's {values[key]!r}; "
                               "a resumed run keeps its configuration (only --epochs and --workers may change)")
            values[key] = v
            where[key] = f"--{key.replace('_', '-')}"
    cfg = TrainConfig(**values).check(where)
    return cfg, where, resume_dir


def cmd_train(args) -> int:
    import deepbox
    from deepbox import nn
    from deepbox.cli.data import FLIP_SAFE, AugmentedImages, channel_stats, normalise
    from deepbox.data import DataLoader, TensorDataset
    from deepbox.train import Accuracy, ConfusionMatrix, CSVLogger, JSONLogger, ModelCheckpoint, Trainer
    from deepbox.viz import plot_confusion_matrix, plot_filters, plot_history, plot_predictions

    cfg, where, resume_dir = _train_config(args)
    entry = _model_entry(cfg.model)
    if entry["task"] == "language-model":
        return _train_language_model(cfg, args, resume_dir)
    if entry["task"] not in TRAINABLE_TASKS:
        raise CLIError(f"model {cfg.model!r} is a {entry['task']} model; 'deepbox train' trains image classifiers "
                       "(see 'deepbox models' for their names)")

    if resume_dir:
        out = resume_dir
        if args.out and os.path.abspath(args.out) != os.path.abspath(resume_dir):
            raise CLIError(f"--out {args.out} and --resume {resume_dir} name different folders; a resumed run "
                           "writes into its own folder")
    else:
        out = args.out or _run_folder(cfg.model)
        if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
            raise CLIError(f"{out} already holds a run ({CHECKPOINT_NAME}); choose another --out, or continue it "
                           f"with --resume {out}")

    data = _load_data(cfg.data, cfg.limit_train, cfg.limit_test)
    n_classes = len(data.classes)
    c, h, w = data.x_train.shape[1:]
    if h != w:
        raise CLIError(f"dataset {cfg.data!r} has {h}x{w} images; the zoo's models expect square images")
    kwargs = _model_kwargs(cfg.model, c, n_classes, h)
    deepbox.manual_seed(cfg.seed)
    model = _build_model(cfg.model, kwargs)

    x_train, y_train = data.x_train, data.y_train
    mean, std = channel_stats(x_train)
    val = None
    if cfg.val_split > 0:
        order = np.random.default_rng(cfg.seed).permutation(len(x_train))
        n_val = max(1, int(round(len(x_train) * cfg.val_split)))
        if n_val >= len(x_train):
            raise CLIError(f"val-split {cfg.val_split} leaves no training images out of {len(x_train)}")
        val = (x_train[order[:n_val]], y_train[order[:n_val]])
        x_train, y_train = x_train[order[n_val:]], y_train[order[n_val:]]
    xt = normalise(x_train, mean, std)
    if cfg.augment:
        pad = [(0.0 - m) / s for m, s in zip(mean, std)]  # a black pixel, normalised
        flip = str(cfg.data).lower() in FLIP_SAFE
        train_ds = AugmentedImages(xt, y_train, pad, shift=2, flip=flip)
    else:
        train_ds = TensorDataset(deepbox.from_numpy(xt), deepbox.from_numpy(y_train))
    gen = deepbox.Generator()
    gen.manual_seed(cfg.seed)
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                              num_workers=cfg.workers, persistent_workers=cfg.workers > 0)
    x_test_n = normalise(data.x_test, mean, std)
    test_set = (deepbox.from_numpy(x_test_n), deepbox.from_numpy(data.y_test))
    if val is not None:
        monitor_set, val_label = (deepbox.from_numpy(normalise(val[0], mean, std)), deepbox.from_numpy(val[1])), \
            "validation"
    else:
        monitor_set, val_label = test_set, "test"

    run_cfg = {
        "format": "deepbox.cli.run/1",
        "model": {"name": cfg.model, "kwargs": kwargs},
        "train": cfg.to_dict(),
        "data": {"name": cfg.data, "source": data.source, "classes": data.classes, "input_shape": [c, h, w],
                 "mean": mean, "std": std, "train_size": len(x_train), "test_size": len(data.x_test),
                 "val_size": 0 if val is None else len(val[0])},
        "deepbox_version": deepbox.__version__,
    }
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = None
    if cfg.scheduler == "cosine":
        scheduler = deepbox.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    trainer = Trainer(
        model, optimizer, nn.CrossEntropyLoss(), metrics=[Accuracy()], scheduler=scheduler,
        callbacks=[ModelCheckpoint(out, save_best=False, last_name=CHECKPOINT_NAME, extra=run_cfg),
                   CSVLogger(os.path.join(out, "history.csv")), JSONLogger(os.path.join(out, "history.json"))],
        verbose=0 if args.quiet else 1, predict_batch_size=500)
    if resume_dir:
        try:
            trainer.load_checkpoint(os.path.join(out, CHECKPOINT_NAME))
        except (ValueError, KeyError, RuntimeError) as e:
            raise CLIError(f"cannot resume from {out}: {e}") from None
        if cfg.epochs <= trainer.epoch:
            raise CLIError(f"the run in {out} has already trained {trainer.epoch} epochs; pass --epochs N with "
                           f"N > {trainer.epoch} to train further")
        if scheduler is not None:  # more epochs than planned: the rest of the cosine stretches to the new end
            scheduler.T_max = cfg.epochs
    os.makedirs(out, exist_ok=True)
    _write_json(os.path.join(out, "config.json"), run_cfg)

    n_params = sum(p.numel() for p in model.parameters())
    _say(f"deepbox train: {cfg.model} ({n_params:,} parameters) on {cfg.data}: {len(x_train):,} training / "
         f"{len(data.x_test):,} test images {c}x{h}x{w}, {n_classes} classes; {cfg.epochs} epochs, batch "
         f"{cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}{', augmented' if cfg.augment else ''}")
    if resume_dir:
        _say(f"resuming {out} after epoch {trainer.epoch}")
    _say(f"run folder: {out}")

    t0 = time.perf_counter()
    history = trainer.fit(train_loader, _Pairs(monitor_set, 500), epochs=cfg.epochs)
    train_s = time.perf_counter() - t0

    cm = ConfusionMatrix(n_classes)
    result = trainer.evaluate(test_set, metrics=[Accuracy(), cm])
    logits = trainer.predict(test_set[0][:32])._data
    prob = _softmax(logits)
    results = {"test_loss": result["loss"], "test_accuracy": result["accuracy"], "test_size": len(data.x_test),
               "epochs": trainer.epoch, "train_seconds_this_session": train_s,
               "seconds_per_epoch": trainer.timing["epoch_time_s"][-len(history["loss"]):]}
    _write_json(os.path.join(out, "results.json"), results)
    plot_history(history, os.path.join(out, "curves.png"), val_label=val_label)
    plot_confusion_matrix(result["confusion_matrix"], os.path.join(out, "confusion_matrix.png"),
                          classes=data.classes, title=f"{cfg.model} on {cfg.data} test")
    plot_predictions(data.x_test[:32], prob.argmax(1), data.y_test[:32], os.path.join(out, "predictions.png"),
                     classes=data.classes, probabilities=prob.max(1))
    conv = next((m for m in model.modules() if type(m).__name__ == "Conv2d"), None)
    if conv is not None:
        plot_filters(conv.weight, os.path.join(out, "filters.png"), title=f"{cfg.model} first-layer filters")
    _say(f"test accuracy: {result['accuracy']:.2%} ({len(data.x_test):,} images, loss {result['loss']:.4f}) after "
         f"{trainer.epoch} epochs; trained in {_duration(train_s)}")
    _say(f"wrote {out}/: {CHECKPOINT_NAME}, config.json, history.csv, history.json, results.json, curves.png, "
         f"confusion_matrix.png, predictions.png{', filters.png' if conv is not None else ''}")
    return 0


class _Pairs:
    """An (inputs, targets) pair of tensors seen as a loader of chunks, for evaluation bars with a length."""

    def __init__(self, pair, batch_size: int) -> None:
        self.x, self.y = pair
        self.batch_size = batch_size

    def __len__(self) -> int:
        return (self.x.shape[0] + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        for i in range(0, self.x.shape[0], self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _duration(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {s % 60:04.1f} s"


LM_STEPS_PER_EPOCH = 100
LM_SEQ_LEN = 128


def _lm_corpus(data: str):
    from deepbox.models.sequence import load_char_corpus

    path = None if data in ("shakespeare", TrainConfig.data) else data
    if path is not None and not os.path.isfile(path):
        # checked here: the corpus finder would otherwise fall back to Shakespeare without a word
        raise CLIError(f"text {data!r} cannot be loaded: no such file; expected 'shakespeare' or a UTF-8 .txt file")
    try:
        return load_char_corpus(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CLIError(f"text {data!r} cannot be loaded: {e}; expected 'shakespeare' or a UTF-8 .txt file") from None


def _train_language_model(cfg: TrainConfig, args, resume_dir: str | None) -> int:
    """Character language models (char_lstm, char_gpt) on Shakespeare or a text file.

    An "epoch" here is 100 optimiser steps on random windows of 128 characters; the result is
    validation bits per character. The run folder holds the checkpoint (weights, vocabulary and
    configuration), history.json, results.json, curves.png and a sample of generated text.
    """
    import deepbox
    from deepbox.models.sequence import train_char_lm
    from deepbox.viz import plot_history

    if resume_dir:
        raise CLIError("--resume is not available for language models (their training loop keeps no optimiser "
                       "state in the run folder); start a new run")
    out = args.out or _run_folder(cfg.model)
    if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
        raise CLIError(f"{out} already holds a run ({CHECKPOINT_NAME}); choose another --out")
    vocab, train_ids, val_ids = _lm_corpus(cfg.data)
    deepbox.manual_seed(cfg.seed)
    kwargs = {"vocab_size": len(vocab)}
    model = _build_model(cfg.model, kwargs)
    steps = cfg.epochs * LM_STEPS_PER_EPOCH
    n_params = sum(p.numel() for p in model.parameters())
    _say(f"deepbox train: {cfg.model} ({n_params:,} parameters) on {cfg.data}: {len(train_ids):,} training / "
         f"{len(val_ids):,} validation characters, vocabulary {len(vocab)}; {steps} steps of {cfg.batch_size} "
         f"windows of {LM_SEQ_LEN}, lr {cfg.lr:g}")
    _say(f"run folder: {out}")
    os.makedirs(out, exist_ok=True)
    res = train_char_lm(model, train_ids, val_ids, seq_len=LM_SEQ_LEN, batch_size=cfg.batch_size, lr=cfg.lr,
                        weight_decay=cfg.weight_decay, max_steps=steps, eval_every=LM_STEPS_PER_EPOCH,
                        seed=cfg.seed, log=None if args.quiet else _say)
    run_cfg = {"format": "deepbox.cli.run/1", "task": "language-model", "model": {"name": cfg.model, "kwargs": kwargs},
               "train": cfg.to_dict(), "data": {"name": cfg.data, "vocab": vocab.chars, "seq_len": LM_SEQ_LEN},
               "deepbox_version": deepbox.__version__}
    deepbox.save({"kind": "deepbox.cli.language-model", "model": model.state_dict(), "extra": run_cfg},
                 os.path.join(out, CHECKPOINT_NAME))
    _write_json(os.path.join(out, "config.json"), run_cfg)
    hist = {"loss": [h[2] for h in res["history"]], "val_loss": [h[3] for h in res["history"]]}
    _write_json(os.path.join(out, "history.json"), {"unit": "bits per character, every 100 steps", "history": hist})
    _write_json(os.path.join(out, "results.json"), {"val_bpc": res["val_bpc"], "steps": res["steps"],
                                                    "seconds": res["seconds"]})
    if hist["loss"]:
        plot_history(hist, os.path.join(out, "curves.png"))
    model.eval()
    prompt = deepbox.tensor(vocab.encode("ROMEO:")[None, :]) if all(c in vocab.index for c in "ROMEO:") else \
        deepbox.tensor(train_ids[None, :8])
    with deepbox.no_grad():
        sample = vocab.decode(model.generate(prompt, 200, temperature=0.8)[0])
    with open(os.path.join(out, "sample.txt"), "w", encoding="utf-8") as f:
        f.write(sample + "\n")
    _say(f"validation: {res['val_bpc']:.3f} bits per character after {res['steps']} steps in "
         f"{_duration(res['seconds'])}")
    _say(f"sample:\n{sample}")
    return 0


# ---------------------------------------------------------------------------------------------- eval / predict
def cmd_eval(args) -> int:
    import deepbox
    from deepbox import nn
    from deepbox.cli.data import normalise
    from deepbox.train import F1, Accuracy, Trainer

    model, run_cfg = _restore_model(args.run)
    dcfg = run_cfg["data"]
    name = args.data or dcfg["name"]
    data = _load_data(name, None, args.limit_test)
    shape = list(data.x_test.shape[1:])
    if shape != list(dcfg["input_shape"]):
        raise CLIError(f"dataset {name!r} has images of shape {shape} (C, H, W) but the model in {args.run} was "
                       f"trained on {dcfg['input_shape']}; expected a dataset like {dcfg['name']!r}")
    n_classes = len(dcfg["classes"])
    if data.y_test.size and int(data.y_test.max()) >= n_classes:
        raise CLIError(f"dataset {name!r} has labels up to {int(data.y_test.max())} but the model knows "
                       f"{n_classes} classes")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size {args.batch_size}: expected a positive integer")
    x = deepbox.from_numpy(normalise(data.x_test, dcfg["mean"], dcfg["std"]))
    trainer = Trainer(model, _NoOptimizer(), nn.CrossEntropyLoss(), verbose=0, predict_batch_size=args.batch_size)
    r = trainer.evaluate((x, deepbox.from_numpy(data.y_test)), metrics=[Accuracy(), F1(num_classes=n_classes)])
    _say(f"{args.run}: {run_cfg['model']['name']} on {name} test split ({len(data.x_test):,} images)")
    _say(f"test loss {r['loss']:.4f}  accuracy {r['accuracy']:.2%}  macro F1 {r['f1_macro']:.4f}")
    return 0


class _NoOptimizer:
    """Evaluation needs no optimiser; the Trainer only asks for one."""

    param_groups = [{"lr": 0.0}]


def _read_image(path: str, channels: int, size: tuple[int, int], invert: bool) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise CLIError("'deepbox predict' reads images with Pillow, which is not installed; "
                       "pip install 'deepbox[cli]'") from None
    if not os.path.isfile(path):
        raise CLIError(f"image {path!r}: no such file; expected a PNG or JPEG file")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CLIError(f"image {path!r} cannot be read ({e}); expected a PNG or JPEG file") from None
    if invert:
        arr = 255 - arr
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def cmd_predict(args) -> int:
    import deepbox
    from deepbox.cli.data import normalise

    if args.top_k < 1:
        raise CLIError(f"--top-k {args.top_k}: expected a positive integer")
    model, run_cfg = _restore_model(args.run)
    dcfg = run_cfg["data"]
    c, h, w = dcfg["input_shape"]
    images = np.stack([_read_image(p, c, (h, w), args.invert) for p in args.images])
    with deepbox.no_grad():
        logits = model(deepbox.from_numpy(normalise(images, dcfg["mean"], dcfg["std"])))._data
    prob = _softmax(logits)
    classes = dcfg["classes"]
    k = min(args.top_k, prob.shape[1])
    width = max(len(str(c)) for c in classes)
    for path, p in zip(args.images, prob):
        _say(path)
        for rank, j in enumerate(np.argsort(-p, kind="stable")[:k], 1):
            _say(f"  {rank}. {str(classes[j]):<{width}}  {p[j]:7.2%}")
    return 0


# ---------------------------------------------------------------------------------------------- listings
def cmd_models(args) -> int:
    from deepbox.models import get_model, list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        try:
            kw = {"in_channels": 1, "num_classes": 10} if info["task"] in TRAINABLE_TASKS else {}
            model = get_model(name, **kw)
            count = f"{sum(p.numel() for p in model.parameters()):,}"
        except Exception:
            count = "?"
        rows.append((name, info["task"], count, info.get("summary", "")))
    _table(("model", "task", "parameters", "description"), rows, right={2})
    _say("\nparameters: for 1-channel 28x28 inputs and 10 classes (image models), or the default arguments; "
         "'deepbox train --model NAME' trains the image and sequence classifiers")
    return 0


def cmd_datasets(args) -> int:
    from deepbox.vision.datasets import available_datasets

    rows = []
    for d in available_datasets():
        sizes = f"{d['train_size']:,} / {d['test_size']:,}" if d.get("train_size") else "-"
        rows.append((d["name"], "yes" if d["available"] else "no", sizes, d.get("where") or "not found",
                     d.get("description", "")))
    _table(("dataset", "available", "train / test", "where", "description"), rows)
    _say("\nalso: --data PATH for a .npz file (x_train/y_train/x_test/y_test or images/labels), a folder with the "
         "four IDX files, or a folder of class folders of images; set $DEEPBOX_DATA to add a search folder")
    return 0


def cmd_info(args) -> int:
    import platform

    import deepbox

    _say(f"deepbox     {deepbox.__version__} ({os.path.dirname(os.path.abspath(deepbox.__file__))})")
    _say(f"python      {platform.python_version()} ({platform.python_implementation()}, {sys.platform})")
    _say(f"numpy       {np.__version__}")
    _say(f"cpus        {os.cpu_count()}")
    _say(f"threads     {deepbox.get_num_threads()} (BLAS)")
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            _say(f"blas        {lib.get('internal_api')} {lib.get('version')} ({lib.get('user_api')}, "
                 f"{lib.get('num_threads')} threads, {lib.get('architecture') or '-'}) {lib.get('filepath', '')}")
    except ImportError:
        _say("blas        (install threadpoolctl to see which BLAS runs)")
    from importlib import metadata

    # versions from the installed metadata: importing matplotlib or optuna only to ask would take seconds
    for dist, extra in (("safetensors", "cli"), ("tqdm", "cli"), ("matplotlib", "cli"), ("pillow", "cli"),
                        ("pyyaml", "cli"), ("tensorboardX", "tensorboard"), ("optuna", "tune"), ("numba", "fast")):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = f"not installed (pip install 'deepbox[{extra}]')"
        _say(f"{dist:<11} {version}")
    from deepbox.ops import accel

    if accel.enabled():
        _say(f"kernels     compiled (numba): convolution parts, pooling, normalisation, activations, "
             f"LSTM cells; {accel.num_threads()} threads")
    else:
        why = "DEEPBOX_NUMBA=0" if os.environ.get("DEEPBOX_NUMBA") == "0" else "numba not installed"
        _say(f"kernels     NumPy only ({why}); pip install 'deepbox[fast]' for the compiled ones")
    from deepbox import backend

    if backend.allocator_tuned:
        _say("allocator   freed arrays kept for reuse (glibc mallopt; DEEPBOX_MALLOC=0 turns it off)")
    else:
        _say("allocator   the C library's default (DEEPBOX_MALLOC=0, or not glibc)")
    return 0


def _table(header: tuple, rows: list[tuple], right: set[int] | None = None) -> None:
    right = right or set()
    cols = list(zip(header, *rows)) if rows else [(h,) for h in header]
    widths = [max(len(str(v)) for v in col) for col in cols]

    def fmt(row):
        cells = [str(v).rjust(wd) if i in right else str(v).ljust(wd) for i, (v, wd) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    _say(fmt(header))
    _say(fmt(tuple("-" * wd for wd in widths)))
    for r in rows:
        _say(fmt(r))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The steps of ``deepbox train`` (``deepbox/cli/train.py``), one function each: ``train_config`` (defaults,
the resumed run, a file and flags), ``prepare_data`` (load, split, normalise, augment, loaders),
``build_trainer`` (model, optimiser, schedule, callbacks; restored from the checkpoint on ``--resume``) and
``write_report`` (results, pictures). The one-process command (``train``), the data-parallel one
(``train_dist``) and the language-model run (``train_lm``) are built from them.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from deepbox.cli.common import (
    CHECKPOINT_NAME,
    CLIError,
    build_model,
    duration,
    load_data,
    model_kwargs,
    new_run_folder,
    read_run,
    say,
    write_json,
)
from deepbox.cli.config import TrainConfig, load_config_file

__all__ = ["train_config", "prepare_data", "build_trainer", "write_report", "augmentation", "schedule_interval"]

# datasets whose classes keep their meaning under a horizontal flip (digits do not)
FLIP_SAFE = ("fashion-mnist", "fashion-mnist-small", "cifar10")
EVAL_BATCH = 500


# ---------------------------------------------------------------------------------------------- step 1: config
# what may differ from the run being resumed: on any resume, and when extending a finished run
CHANGEABLE_ON_RESUME = ("epochs", "workers")
CHANGEABLE_ON_EXTENSION = ("lr",)


@dataclass
class Resume:
    """The run being resumed: its folder, its configuration, and the keys given new values (key -> where from)."""

    folder: str
    run_cfg: dict
    changed: dict


def train_config(args) -> tuple[TrainConfig, Resume | None]:
    """The configuration from defaults, the run being resumed, a file and flags (later ones win).

    A resumed run keeps its identity: a value from a config file or a flag that differs from the
    run's is refused, wherever it comes from, unless it is one of ``CHANGEABLE_ON_RESUME`` (or,
    checked once the checkpoint is read, ``CHANGEABLE_ON_EXTENSION``).
    """
    where: dict[str, str] = {}
    values = TrainConfig().to_dict()
    resume = None
    if args.resume:
        run_cfg, _, _ = read_run(args.resume)
        saved = {k: v for k, v in run_cfg["train"].items() if k in values}
        values.update(saved)
        where.update({k: f"the resumed run {args.resume}" for k in saved})
        resume = Resume(args.resume, run_cfg, {})
    if args.config:
        file_values = load_config_file(args.config)
        values.update(file_values)
        where.update({k: f"config file {args.config}" for k in file_values})
    for key in TrainConfig.keys():
        v = getattr(args, key, None)
        if v is not None:
            values[key] = v
            where[key] = f"--{key.replace('_', '-')}"
    cfg = TrainConfig(**values).check(where)
    if resume:
        before = TrainConfig(**{**TrainConfig().to_dict(), **saved}).check().to_dict()
        now = cfg.to_dict()
        resume.changed = {k: where[k] for k in now if now[k] != before[k]}
        refused = [k for k in resume.changed if k not in CHANGEABLE_ON_RESUME + CHANGEABLE_ON_EXTENSION]
        if refused:
            what = "; ".join(f"{k.replace('_', '-')} = {now[k]!r} (from {where[k]}) where the run has {before[k]!r}"
                             for k in refused)
            raise CLIError(f"{what}: a resumed run keeps its configuration (its data, model and recipe); only "
                           f"{', '.join(CHANGEABLE_ON_RESUME)} may change, and lr when extending a finished run. "
                           "Start a new run (--out) for another configuration")
    return cfg, resume


def _output_folder(cfg: TrainConfig, args, resume: Resume | None) -> str:
    if resume:
        if args.out and os.path.abspath(args.out) != os.path.abspath(resume.folder):
            raise CLIError(f"--out {args.out} and --resume {resume.folder} name different folders; a resumed run "
                           "writes into its own folder")
        return resume.folder
    out = args.out or new_run_folder(cfg.model)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file; expected a folder for the run (a new one, or an empty one)")
    if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
        raise CLIError(f"{out} already holds a run ({CHECKPOINT_NAME}); choose another --out, or continue it "
                       f"with --resume {out}")
    return out


# the files a run folder holds before its first checkpoint: removed again when that run fails
_EARLY_FILES = ("config.json", "history.csv", "history.json")


def _make_folder(out: str) -> bool:
    """Create the run folder; True if this run created it."""
    created = not os.path.isdir(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CLIError(f"the run folder {out} cannot be created ({e.strerror or e}); expected a writable path for "
                       "--out") from None
    return created


def _check_libraries() -> None:
    """Stop before training, not after it, when the pictures of the report cannot be drawn."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise CLIError("'deepbox train' draws its report with matplotlib, which is not installed (it is one of "
                       "deepbox's dependencies, so something removed it); install it: pip install matplotlib")


def _after_failure(out: str, created: bool, resumable: bool = True) -> None:
    """A failed or interrupted run: keep a resumable folder and say so, remove a half-made one."""
    if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
        if not resumable:
            return
        print(f"deepbox train: the run folder {out} keeps the checkpoint of the last finished epoch; continue "
              f"with: deepbox train --resume {out}", file=sys.stderr)
        return
    for name in _EARLY_FILES:
        try:
            os.unlink(os.path.join(out, name))
        except OSError:
            pass
    if created:
        try:
            os.rmdir(out)  # only if nothing else is in it
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------- step 2: data
@dataclass
class PreparedData:
    """The data side of a run: loaders, the test set, and the run configuration that records it."""

    data: object              # deepbox.cli.data.ImageData (uint8 images, labels, class names)
    kwargs: dict              # the model's arguments for this data
    train_loader: object
    monitor_loader: object    # evaluated after every epoch: the validation split, or the test set
    monitor_label: str        # "validation" or "test"
    test_loader: object
    x_test: object            # the normalised test images (a tensor), for the prediction pictures
    run_cfg: dict


def augmentation(image_size: tuple[int, int], pad_value, flip: bool):
    """The ``--augment`` recipe: shifts of up to 2 pixels (padding with ``pad_value``) and, if
    ``flip``, left-right mirroring with probability 1/2, drawn per image."""
    from deepbox.vision import transforms as T

    steps = [T.RandomCrop(image_size, padding=2, fill=pad_value)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps)


def prepare_data(cfg: TrainConfig) -> PreparedData:
    """Load both splits, hold out a validation split, normalise, and build the loaders."""
    import deepbox
    from deepbox.cli.data import TransformedImages, channel_stats, normalise
    from deepbox.data import DataLoader, TensorDataset

    data = load_data(cfg.data, cfg.limit_train, cfg.limit_test)
    c, h, w = data.x_train.shape[1:]
    if h != w:
        raise CLIError(f"dataset {cfg.data!r} has {h}x{w} images; the zoo's models expect square images")
    kwargs = model_kwargs(cfg.model, c, len(data.classes), h)

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

    def tensors(x, y):
        return deepbox.from_numpy(normalise(x, mean, std)), deepbox.from_numpy(y)

    def eval_loader(pair):
        # its own generator: evaluating must not draw from the default one that training uses
        return DataLoader(TensorDataset(*pair), batch_size=EVAL_BATCH, generator=deepbox.Generator())

    train_pair = tensors(x_train, y_train)
    if cfg.augment:
        pad = [(0.0 - m) / s for m, s in zip(mean, std)]  # a black pixel, normalised
        train_ds = TransformedImages(*train_pair, augmentation((h, w), pad, str(cfg.data).lower() in FLIP_SAFE))
    else:
        train_ds = TensorDataset(*train_pair)
    gen = deepbox.Generator()
    gen.manual_seed(cfg.seed)
    # workers start afresh every epoch, seeded from `gen` (which a checkpoint saves): persistent workers would carry
    # their random streams across epochs, and a resumed run could not restore them (its augmentation would differ)
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                              num_workers=cfg.workers, persistent_workers=False)
    test_pair = tensors(data.x_test, data.y_test)
    test_loader = eval_loader(test_pair)
    if val is not None:
        monitor_loader, monitor_label = eval_loader(tensors(*val)), "validation"
    else:
        monitor_loader, monitor_label = test_loader, "test"
    run_cfg = {
        "format": "deepbox.cli.run/1",
        "model": {"name": cfg.model, "kwargs": kwargs},
        "train": cfg.to_dict(),
        "data": {"name": cfg.data, "source": data.source, "classes": data.classes, "input_shape": [c, h, w],
                 "mean": mean, "std": std, "train_size": len(x_train), "test_size": len(data.x_test),
                 "val_size": 0 if val is None else len(val[0])},
        "deepbox_version": deepbox.__version__,
    }
    return PreparedData(data, kwargs, train_loader, monitor_loader, monitor_label, test_loader, test_pair[0], run_cfg)


# ---------------------------------------------------------------------------------------------- step 3: trainer
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


def schedule_interval(resume: Resume | None) -> str:
    """How often the learning-rate schedule steps: after every batch (``"step"``), or after every epoch for a run
    made before deepbox stepped it per batch (its segments do not say), so that resuming that run continues its own
    schedule."""
    if resume is None:
        return "step"
    segments = resume.run_cfg.get("segments") or [{}]
    return segments[-1].get("interval", "epoch")


def _steps_per_epoch(prep: PreparedData, interval: str) -> int:
    """The schedule's steps in one epoch: the optimiser steps (batches) when it steps per batch, else 1."""
    return len(prep.train_loader) if interval == "step" else 1


def build_trainer(cfg: TrainConfig, prep: PreparedData, out: str, verbose: int, interval: str = "step"):
    """The model (seeded by ``cfg.seed``), optimiser, schedule and callbacks that write the run folder.

    The cosine schedule goes from ``cfg.lr`` down to 0 over the ``cfg.epochs`` epochs, stepped after every
    batch (``interval="step"``) or, for a resumed run made before that, after every epoch (``"epoch"``).
    """
    import deepbox
    from deepbox import nn
    from deepbox.train import Accuracy, CSVLogger, JSONLogger, ModelCheckpoint, Trainer

    deepbox.manual_seed(cfg.seed)
    model = build_model(cfg.model, prep.kwargs)
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = None
    if cfg.scheduler == "cosine":
        scheduler = deepbox.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cfg.epochs * _steps_per_epoch(prep, interval))
    return Trainer(
        model, optimizer, nn.CrossEntropyLoss(), metrics=[Accuracy()], scheduler=scheduler, scheduler_interval=interval,
        callbacks=[ModelCheckpoint(out, save_best=False, last_name=CHECKPOINT_NAME, extra=prep.run_cfg),
                   CSVLogger(os.path.join(out, "history.csv")), JSONLogger(os.path.join(out, "history.json"))],
        verbose=verbose, predict_batch_size=EVAL_BATCH)


def _check_same_run(run_cfg: dict, resume: Resume) -> None:
    """The data and model prepared now must be those the resumed run was trained with."""
    old = resume.run_cfg
    diffs = []
    if run_cfg["model"] != old.get("model"):
        diffs.append(f"the model was {old.get('model')} and would now be {run_cfg['model']}")
    for key, value in run_cfg["data"].items():
        if key in old.get("data", {}) and old["data"][key] != value:
            diffs.append(f"its {key.replace('_', ' ')} was {old['data'][key]!r:.200} and is now {value!r:.200}")
    if diffs:
        raise CLIError(f"the data of {resume.folder} changed since it was trained ({'; '.join(diffs)}); a resumed run "
                       "must see the same data: restore it, or start a new run")


def _segment(first: int, last: int, lr: float, scheduler: str, interval: str | None = "step") -> dict:
    seg = {"epochs": [first, last], "lr": lr, "scheduler": scheduler}
    if interval is not None:      # absent in runs made before the schedule stepped per batch: they step per epoch
        seg["interval"] = interval
    return seg


def _first_segment(cfg: TrainConfig, run_cfg: dict) -> dict:
    seg = _segment(1, cfg.epochs, cfg.lr, cfg.scheduler)
    run_cfg["segments"] = [seg]
    return seg


def _resume(trainer, cfg: TrainConfig, prep: PreparedData, resume: Resume) -> dict:
    """Restore the checkpoint; continue the planned schedule, or add a segment to a finished run.

    A run plans ``epochs`` epochs with its schedule (cosine: from lr down to 0). Resuming an
    unfinished run continues that plan exactly. Asking a finished run for more epochs adds a
    segment: epochs ``planned + 1 .. N`` with the same kind of schedule, starting again from the
    run's lr or from ``--lr`` (cosine: a warm restart down to 0 over the new epochs). An unfinished
    run is not extended before it has finished its plan, so that no schedule is bent mid-way.
    The schedule steps as the run's did (``schedule_interval``).
    """
    out, run_cfg = resume.folder, prep.run_cfg
    try:
        trainer.load_checkpoint(os.path.join(out, CHECKPOINT_NAME))
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError, IndexError) as e:
        # a checkpoint that reads but does not hold what this run needs (CheckpointError is a ValueError)
        raise CLIError(f"cannot resume from {out}: {type(e).__name__}: {e}") from None
    done, planned = trainer.epoch, int(resume.run_cfg["train"]["epochs"])
    segments = list(resume.run_cfg.get("segments") or [_segment(1, planned, resume.run_cfg["train"]["lr"],
                                                                  resume.run_cfg["train"]["scheduler"], None)])
    if cfg.epochs <= done:
        raise CLIError(f"the run in {out} has already trained {done} epochs; pass --epochs N with N > {done} to "
                       "train further")
    if done < planned:
        if cfg.epochs != planned:
            raise CLIError(f"the run in {out} stopped after {done} of its {planned} planned epochs; finish it first "
                           f"(--resume {out} without --epochs), then extend it with --epochs N")
        if "lr" in resume.changed:
            raise CLIError(f"lr = {cfg.lr:g} (from {resume.changed['lr']}) but the run in {out} has not finished its "
                           f"{planned} planned epochs; lr may change only when a finished run is extended")
        run_cfg["segments"] = segments
        return segments[-1]
    # a finished run asked for more epochs: a new segment of the same kind of schedule, stepped as the run's was
    interval = schedule_interval(resume)
    seg = _segment(planned + 1, cfg.epochs, cfg.lr, cfg.scheduler, segments[-1].get("interval"))
    run_cfg["segments"] = segments + [seg]
    for group in trainer.optimizer.param_groups:
        group["lr"] = cfg.lr
        group["initial_lr"] = cfg.lr
    sched = trainer.scheduler
    if sched is not None:  # cosine from lr down to 0 over the new epochs (the recursive form starts at last_epoch 0)
        sched.T_max = (cfg.epochs - planned) * _steps_per_epoch(prep, interval)
        sched.base_lrs = [cfg.lr] * len(trainer.optimizer.param_groups)
        sched.last_epoch = 0
        sched._last_lr = [cfg.lr] * len(trainer.optimizer.param_groups)
    return seg


def _announce(cfg: TrainConfig, prep: PreparedData, trainer, out: str, resume: Resume | None, segment: dict) -> None:
    data = prep.data
    c, h, w = data.x_train.shape[1:]
    n_params = sum(p.numel() for p in trainer.model.parameters())
    say(f"deepbox train: {cfg.model} ({n_params:,} parameters) on {cfg.data}: {prep.run_cfg['data']['train_size']:,} "
        f"training / {len(data.x_test):,} test images {c}x{h}x{w}, {len(data.classes)} classes; {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}{', augmented' if cfg.augment else ''}")
    first, last = segment["epochs"]
    sched = f"cosine from lr {segment['lr']:g} to 0" if segment["scheduler"] == "cosine" else \
        f"constant lr {segment['lr']:g}"
    if resume and first > 1 and trainer.epoch == first - 1:
        say(f"extending {out}: epochs {first}-{last} are a new segment ({sched})")
    elif resume:
        say(f"resuming {out} after epoch {trainer.epoch}")
    say(f"run folder: {out}")


# ---------------------------------------------------------------------------------------------- step 4: report
def write_report(cfg: TrainConfig, prep: PreparedData, trainer, out: str, history: dict, train_s: float) -> None:
    """Evaluate on the test split; write results.json and the pictures; say where they are."""
    from deepbox.nn import functional as F
    from deepbox.train import Accuracy, ConfusionMatrix
    from deepbox.viz import plot_confusion_matrix, plot_filters, plot_history, plot_predictions

    data = prep.data
    cm = ConfusionMatrix(len(data.classes))
    result = trainer.evaluate(prep.test_loader, metrics=[Accuracy(), cm])
    if not getattr(trainer, "is_main_process", True):   # data-parallel: rank 0 writes the report
        return
    prob = F.softmax(trainer.predict(prep.x_test[:32]), dim=1).numpy()
    results = {"test_loss": result["loss"], "test_accuracy": result["accuracy"], "test_size": len(data.x_test),
               "epochs": trainer.epoch, "train_seconds_this_session": train_s,
               "seconds_per_epoch": trainer.timing["epoch_time_s"][-len(history["loss"]):]}
    write_json(os.path.join(out, "results.json"), results)
    plot_history(history, os.path.join(out, "curves.png"), val_label=prep.monitor_label)
    plot_confusion_matrix(result["confusion_matrix"], os.path.join(out, "confusion_matrix.png"),
                          classes=data.classes, title=f"{cfg.model} on {cfg.data} test")
    plot_predictions(data.x_test[:32], prob.argmax(1), data.y_test[:32], os.path.join(out, "predictions.png"),
                     classes=data.classes, probabilities=prob.max(1))
    conv = next((m for m in trainer.model.modules() if type(m).__name__ == "Conv2d"), None)
    if conv is not None:
        plot_filters(conv.weight, os.path.join(out, "filters.png"), title=f"{cfg.model} first-layer filters")
    say(f"test accuracy: {result['accuracy']:.2%} ({len(data.x_test):,} images, loss {result['loss']:.4f}) after "
        f"{trainer.epoch} epochs; trained in {duration(train_s)}")
    say(f"wrote {out}/: {CHECKPOINT_NAME}, config.json, history.csv, history.json, results.json, curves.png, "
        f"confusion_matrix.png, predictions.png{', filters.png' if conv is not None else ''}")

"""Callbacks: code that runs at fixed points of ``Trainer.fit``.

A callback overrides any of ``on_fit_begin(trainer)``, ``on_epoch_begin(trainer, epoch)``,
``on_train_batch_end(trainer, step, logs)``, ``on_epoch_end(trainer, epoch, logs)`` and
``on_fit_end(trainer)``. ``logs`` at the end of an epoch holds that epoch's history row
(``loss``, metrics, ``val_*``, ``lr``). The Trainer calls ``on_train_batch_end`` only on the
callbacks that override it, so a callback that does not need batches costs nothing per batch.

Callbacks run in the order of their ``order`` attribute (the schedule first, the checkpoint
last, so that a checkpoint holds everything the epoch changed), then in the order given.
A callback that keeps state across epochs returns it from ``state_dict()`` so that a resumed
run continues exactly.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LRSchedulerCallback", "CSVLogger", "JSONLogger",
           "TensorBoardLogger", "resolve_mode"]


def resolve_mode(monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` is ``"max"`` for accuracy/F1/precision/recall, else ``"min"``."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(s in name for s in ("acc", "f1", "precision", "recall", "auc")) else "min"


def _monitored(logs: dict, monitor: str, who: str) -> float:
    if monitor not in logs:
        raise KeyError(f"{who} monitors {monitor!r}, which this run does not record; recorded: "
                       f"{', '.join(logs) or '(nothing)'} (val_* needs a val_loader)")
    return float(logs[monitor])


def _write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``deepbox.io.atomic``), creating its folder if needed."""
    from deepbox.io.atomic import write_text_atomically

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomically(path, text)


def _writes(trainer) -> bool:
    """Whether this process writes files: not on ranks other than 0 of a data-parallel Trainer."""
    return getattr(trainer, "is_main_process", True)


class Callback:
    """Base class; every hook does nothing.

    ``has_state = False`` marks a callback that only observes (it keeps nothing a resumed run needs):
    checkpoints leave it out, so a run can be resumed with or without it.
    """

    order = 20
    has_state = True

    def on_fit_begin(self, trainer) -> None:
        pass

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        pass

    def on_train_batch_end(self, trainer, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _Improvement:
    """Tracks the best value of a monitored quantity."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: a history key (``"val_loss"``, ``"val_accuracy"``, ``"loss"``).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (``max`` for accuracy-like names).
        patience: epochs without improvement to wait before stopping.
        min_delta: the smallest change that counts as an improvement.
        restore_best_weights: at the end of training, load the weights of the best epoch.
    """

    order = 10

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = False) -> None:
        if not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        self._track = _Improvement(monitor, mode, min_delta)
        self.monitor, self.mode, self.patience = monitor, self._track.mode, patience
        self.min_delta, self.restore_best_weights = self._track.min_delta, restore_best_weights
        self.wait = 0
        self.best_epoch = -1
        self.stopped_epoch = None
        self.best_weights = None

    @property
    def best(self) -> float:
        return self._track.best

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self._track.improved(value):
            self._track.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = {k: v._data.copy() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True
            trainer.stop_reason = (f"early stopping: {self.monitor} has not improved for {self.wait} epochs "
                                   f"(best {self.best:.6g} at epoch {self.best_epoch + 1})")

    def on_fit_end(self, trainer) -> None:
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch is not None:
            from deepbox.tensor import _make

            trainer.model.load_state_dict({k: _make(v) for k, v in self.best_weights.items()})

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self._track.best = float(state["best"])
        self.wait, self.best_epoch = int(state["wait"]), int(state["best_epoch"])
        bw = state.get("best_weights")
        self.best_weights = None if bw is None else {k: np.array(getattr(v, "_data", v)) for k, v in bw.items()}


class ModelCheckpoint(Callback):
    """Save the whole training state after each epoch: ``last`` always, ``best`` when it improves.

    Each file is written with ``deepbox.save`` (a temporary file renamed over the old one), so a
    crash or a failing epoch never leaves a damaged checkpoint. A file holds the model, the
    optimiser, the scheduler, the epoch, the history, the callbacks' state and the random state
    (``Trainer.state_dict()``), plus ``extra`` (for example the configuration that rebuilds the
    model); ``Trainer.load_checkpoint(path)`` resumes from it.

    Args:
        dirpath: the folder for the files (created when missing).
        monitor, mode: what ``best`` means (as in ``EarlyStopping``).
        save_best, save_last: which files to write.
        best_name, last_name: their file names.
        extra: a JSON-able dict stored under ``"extra"`` in every file.
    """

    order = 30

    def __init__(self, dirpath: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_best: bool = True, save_last: bool = True, best_name: str = "best.safetensors",
                 last_name: str = "last.safetensors", extra: dict | None = None) -> None:
        self.dirpath = os.fspath(dirpath)
        self._track = _Improvement(monitor, mode, 0.0)
        self.monitor, self.mode = monitor, self._track.mode
        self.save_best, self.save_last = save_best, save_last
        self.best_path = os.path.join(self.dirpath, best_name)
        self.last_path = os.path.join(self.dirpath, last_name)
        self.extra = extra
        self.best_epoch = -1

    @property
    def best(self) -> float:
        return self._track.best

    def on_fit_begin(self, trainer) -> None:
        if _writes(trainer):
            os.makedirs(self.dirpath, exist_ok=True)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        better = False
        if self.save_best:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            better = self._track.improved(value)
            if better:
                self._track.best, self.best_epoch = value, epoch
        if not _writes(trainer):
            return
        if better:
            trainer.save_checkpoint(self.best_path, extra=self.extra)
        if self.save_last:
            trainer.save_checkpoint(self.last_path, extra=self.extra)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self._track.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])


class LRSchedulerCallback(Callback):
    """Step a learning-rate scheduler after every optimiser step or every epoch.

    ``ReduceLROnPlateau`` is stepped once per epoch with the value of ``monitor``.

    Args:
        scheduler: a ``deepbox.optim.lr_scheduler`` scheduler.
        interval: ``"epoch"`` or ``"step"``.
        monitor: the history key a plateau scheduler watches; None means ``val_loss`` when the
            run validates, else ``loss``.
    """

    order = 0

    def __init__(self, scheduler, interval: str = "epoch", monitor: str | None = None) -> None:
        if interval not in ("epoch", "step"):
            raise ValueError(f"LRSchedulerCallback: interval must be 'epoch' or 'step', got {interval!r}")
        self.scheduler = scheduler
        self.plateau = type(scheduler).__name__ == "ReduceLROnPlateau"
        if self.plateau and interval == "step":
            raise ValueError("ReduceLROnPlateau watches an epoch's metric; use interval='epoch'")
        self.interval = interval
        self.monitor = monitor
        if interval == "step":
            self.on_train_batch_end = self._step_batch  # only then does the Trainer call it per batch

    def _step_batch(self, trainer, step: int, logs: dict) -> None:
        self.scheduler.step()

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if self.interval != "epoch":
            return
        if self.plateau:
            monitor = self.monitor or ("val_loss" if "val_loss" in logs else "loss")
            self.scheduler.step(_monitored(logs, monitor, "ReduceLROnPlateau"))
        else:
            self.scheduler.step()

    # the scheduler's own state travels in the Trainer's checkpoint under "scheduler"


def _table(trainer) -> tuple[list[str], list[dict]]:
    keys = list(trainer.history)
    extra = list(trainer.timing)
    rows = []
    for i in range(trainer.epoch):
        row = {"epoch": i + 1}
        row.update({k: trainer.history[k][i] for k in keys if i < len(trainer.history[k])})
        row.update({k: trainer.timing[k][i] for k in extra if i < len(trainer.timing[k])})
        rows.append(row)
    return ["epoch"] + keys + extra, rows


class CSVLogger(Callback):
    """Write the history to a CSV file (one row per epoch), rewritten atomically after every epoch.

    Columns: ``epoch`` (from 1), the history keys, then ``epoch_time_s`` and ``samples_per_s``.
    A resumed run rewrites the rows it restored, so the file always matches the history.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if not _writes(trainer):
            return
        fields, rows = _table(trainer)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        _write_atomic(self.path, buf.getvalue())


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class JSONLogger(Callback):
    """Write ``{"history": {...}, "timing": {...}, "epochs": n}`` to a JSON file after every epoch."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if not _writes(trainer):
            return
        doc = {"epochs": trainer.epoch,
               "history": {k: [_json_safe(x) for x in v] for k, v in trainer.history.items()},
               "timing": {k: [_json_safe(x) for x in v] for k, v in trainer.timing.items()}}
        _write_atomic(self.path, json.dumps(doc, indent=1) + "\n")


class TensorBoardLogger(Callback):
    """Write the history as TensorBoard scalars (event files via tensorboardX).

    Needs the optional extra: ``pip install 'deepbox[tensorboard]'``.

    Args:
        log_dir: the folder for the event files.
        log_every_n_steps: also log the training loss every n optimiser steps (None: epochs only).
    """

    def __init__(self, log_dir: str | os.PathLike, log_every_n_steps: int | None = None) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoardLogger needs the tensorboardX package, which is not installed; "
                              "install it with: pip install 'deepbox[tensorboard]'") from None
        self.log_dir = os.fspath(log_dir)
        self.writer = SummaryWriter(logdir=self.log_dir)
        self.every = log_every_n_steps
        if log_every_n_steps:
            self.on_train_batch_end = self._log_batch

    def _log_batch(self, trainer, step: int, logs: dict) -> None:
        if step % self.every == 0:
            self.writer.add_scalar("batch/loss", logs["loss"], step)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        for k, v in logs.items():
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f"epoch/{k}", float(v), epoch + 1)
        self.writer.flush()

    def on_fit_end(self, trainer) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

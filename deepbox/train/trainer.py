"""``Trainer``: the training loop as a product, on top of the PyTorch-style core.

The loop is the one a PyTorch user writes by hand (``zero_grad``, forward, loss, ``backward``,
``step``); the Trainer adds metrics, validation, callbacks, a progress bar, a guard against a
loss that turns NaN or infinite, and checkpoints that resume exactly. Per batch it does only
that loop, one ``loss.item()`` (which the guard needs) and the metrics' count updates;
evaluation runs in the loader's batches under ``no_grad``.

Example::

    trainer = Trainer(model, torch.optim.Adam(model.parameters(), 1e-3), nn.CrossEntropyLoss(),
                      metrics=["accuracy"], callbacks=[EarlyStopping("val_accuracy", patience=3)])
    history = trainer.fit(train_loader, val_loader, epochs=10)
    history["val_accuracy"][-1]
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable

import numpy as np

from deepbox import backend
from deepbox.autograd.grad_mode import no_grad
from deepbox.tensor import Tensor, _make
from deepbox.train.callbacks import Callback, LRSchedulerCallback
from deepbox.train.metrics import Metric, get_metric
from deepbox.train.progress import ProgressBar, format_logs

__all__ = ["Trainer", "NonFiniteLossError"]

CHECKPOINT_KIND = "deepbox.train.Trainer"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


def _as_tensor(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _make(x)
    if isinstance(x, (tuple, list)):
        return type(x)(_as_tensor(v) for v in x)
    return x


def _split_batch(batch):
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return _as_tensor(batch[0]), _as_tensor(batch[1])
    kind = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (tuple, list)) else \
        f"a {type(batch).__name__}"
    raise TypeError(f"the Trainer expects each batch to be a pair (inputs, targets); the loader gave {kind}")


def _distributed_setup(distributed):
    """(distributed, rank, world size) for ``Trainer(distributed=...)``; None detects an initialised group."""
    import sys

    dist = sys.modules.get("deepbox.distributed")   # never imported (nor MPI started) just to find out
    active = dist is not None and dist.is_initialized() and dist.get_world_size() > 1
    if distributed is None:
        distributed = active
    elif distributed and (dist is None or not dist.is_initialized()):
        raise ValueError("Trainer(distributed=True) needs deepbox.distributed.init_process_group() first")
    if not distributed:
        return False, 0, 1
    return True, dist.get_rank(), dist.get_world_size()


def _reduce_over_ranks(loss_sum: float, n_total: int, metrics) -> tuple[float, int]:
    """Sum the epoch's loss, sample count and every metric's counts over the ranks (in place for metrics)."""
    import deepbox.distributed as dist

    parts = [np.array([loss_sum, n_total], dtype=np.float64)]
    for m in metrics:
        names = getattr(m, "counts", None)
        if names is None:
            raise TypeError(f"metric {m.name!r} can't be combined across ranks: give its class a `counts` tuple "
                            "naming the attributes that add up over batches")
        parts += [np.asarray(getattr(m, k), dtype=np.float64).reshape(-1) for k in names]
    flat = _make(np.concatenate(parts))
    dist.all_reduce(flat)
    total = flat._data
    off = 2
    for m in metrics:
        for k in m.counts:
            old = getattr(m, k)
            size = np.size(old)
            vals = total[off:off + size]
            off += size
            if isinstance(old, np.ndarray):
                setattr(m, k, vals.reshape(old.shape).astype(old.dtype))
            else:
                setattr(m, k, type(old)(vals[0]))
    return float(total[0]), int(round(total[1]))


def _unwrapped(model):
    """The model inside a DistributedDataParallel wrapper (checkpoints hold its state, without ``module.``)."""
    import sys

    par = sys.modules.get("deepbox.nn.parallel.distributed")
    if par is not None and isinstance(model, par.DistributedDataParallel):
        return model.module
    return model


def _batch_len(y) -> int:
    shape = getattr(y, "shape", None)
    return int(shape[0]) if shape else 1


class Trainer:
    """Fit, evaluate and predict with a model, an optimiser and a loss.

    Args:
        model: a ``deepbox.nn.Module``.
        optimizer: a ``deepbox.optim`` optimiser over the model's parameters.
        loss_fn: a callable ``loss_fn(output, target) -> scalar tensor`` (a loss module or function)
            that averages over the batch.
        metrics: ``Metric`` instances or names (``"accuracy"``, ``"top5"``, ``"f1"``, ``"mse"``, ...),
            computed on the training batches (in training mode) and on the validation set.
        scheduler: a learning-rate scheduler, stepped every ``scheduler_interval``
            (``"epoch"`` or ``"step"``); ``ReduceLROnPlateau`` watches ``val_loss`` (or ``loss``).
        callbacks: ``Callback`` instances (early stopping, checkpoints, loggers).
        verbose: 0 silent, 1 progress bars on a terminal (one line per epoch elsewhere), 2 one line per epoch.
        grad_clip_norm: clip the gradients' global 2-norm to this value before each step.
        on_nonfinite: when the loss is NaN or infinite: ``"raise"`` (stop with ``NonFiniteLossError``
            before the optimiser step, so the weights stay finite), ``"stop"`` (end ``fit`` with
            ``stop_reason`` set), or ``"ignore"``.
        predict_batch_size: the chunk size ``predict`` and ``evaluate`` use for a tensor input.
        distributed: True to train data-parallel over ``deepbox.distributed``'s default group, False
            not to; None (default) detects an initialised group of more than one rank. Then the
            loss and the metrics' counts are summed over the ranks (every rank sees the global
            values), only rank 0 draws progress bars and prints, file-writing callbacks write on
            rank 0 only (``is_main_process``), and a loader's ``DistributedSampler`` gets
            ``set_epoch`` each epoch. Wrap the model in ``DistributedDataParallel`` yourself;
            checkpoints hold the wrapped model's own state (no ``module.`` prefix), so a run resumes
            on any number of processes.

    Attributes:
        history: dict of lists, one entry per epoch: ``loss``, each metric, ``val_loss`` and
            ``val_<metric>`` when validating, and ``lr`` (the first group's rate during the epoch).
        timing: dict of lists: ``epoch_time_s`` and ``samples_per_s`` per epoch (kept out of
            ``history`` so that a resumed history equals an uninterrupted one).
        epoch: the number of epochs completed; ``global_step``: optimiser steps taken.
    """

    def __init__(self, model, optimizer, loss_fn, *, metrics: Iterable | None = None, scheduler=None,
                 scheduler_interval: str = "epoch", callbacks: Iterable[Callback] | None = None, verbose: int = 1,
                 grad_clip_norm: float | None = None, on_nonfinite: str = "raise",
                 predict_batch_size: int = 256, distributed: bool | None = None) -> None:
        if on_nonfinite not in ("raise", "stop", "ignore"):
            raise ValueError(f"on_nonfinite must be 'raise', 'stop' or 'ignore', got {on_nonfinite!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable (a loss module or function), got {type(loss_fn).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.metrics: list[Metric] = [get_metric(m) for m in (metrics or [])]
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"two metrics share a name ({', '.join(names)}); give each a distinct name")
        self.scheduler = scheduler
        cbs = list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be deepbox.train.Callback instances, got {type(cb).__name__}")
        if scheduler is not None:
            cbs.append(LRSchedulerCallback(scheduler, interval=scheduler_interval))
        # stable sort: the schedule first, the checkpoint last, the user's order in between
        self.callbacks = sorted(cbs, key=lambda c: c.order)
        self.verbose = verbose
        self.grad_clip_norm = grad_clip_norm
        self.on_nonfinite = on_nonfinite
        self.predict_batch_size = int(predict_batch_size)
        self.history: dict[str, list] = {}
        self.timing: dict[str, list] = {"epoch_time_s": [], "samples_per_s": []}
        self.epoch = 0
        self.global_step = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self._pending_loader_rng = None
        self._train_loader = None
        self.distributed, self.rank, self.world_size = _distributed_setup(distributed)
        if self.rank != 0:
            self.verbose = 0

    @property
    def is_main_process(self) -> bool:
        """True on rank 0, or when not distributed: the process that prints and writes files."""
        return self.rank == 0

    # ------------------------------------------------------------------ fit
    def fit(self, train_loader, val_loader=None, epochs: int = 1) -> dict[str, list]:
        """Train until ``epochs`` epochs are completed in all (a resumed trainer continues from ``epoch``).

        Returns ``history``.
        """
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        self._train_loader = train_loader
        if self._pending_loader_rng is not None:
            gen = getattr(train_loader, "generator", None)
            if gen is not None:
                gen.set_state(self._pending_loader_rng)
            self._pending_loader_rng = None
        self.stop_training = False
        self.stop_reason = None
        batch_cbs = [cb for cb in self.callbacks
                     if type(cb).on_train_batch_end is not Callback.on_train_batch_end
                     or "on_train_batch_end" in vars(cb)]
        for cb in self.callbacks:
            cb.on_fit_begin(self)
        try:
            while self.epoch < epochs and not self.stop_training:
                epoch = self.epoch
                for cb in self.callbacks:
                    cb.on_epoch_begin(self, epoch)
                lr = float(self.optimizer.param_groups[0]["lr"])
                sampler = getattr(train_loader, "sampler", None)
                if hasattr(sampler, "set_epoch"):       # DistributedSampler: a new shared order per epoch
                    sampler.set_epoch(epoch)
                t0 = time.perf_counter()
                logs, n = self._train_epoch(train_loader, epoch, epochs, batch_cbs)
                if logs is None:  # stopped on a non-finite loss
                    break
                train_time = time.perf_counter() - t0
                if val_loader is not None:
                    val = self.evaluate(val_loader, desc=f"epoch {epoch + 1}/{epochs} val")
                    logs.update({f"val_{k}": v for k, v in val.items() if not isinstance(v, np.ndarray)})
                logs["lr"] = lr
                for k, v in logs.items():
                    self.history.setdefault(k, []).append(v)
                self.timing["epoch_time_s"].append(time.perf_counter() - t0)
                self.timing["samples_per_s"].append(n / max(train_time, 1e-9))
                self.epoch = epoch + 1
                if self.verbose:
                    self._print(f"epoch {epoch + 1}/{epochs}  {format_logs(logs)}  "
                                f"({self.timing['epoch_time_s'][-1]:.1f} s, {self.timing['samples_per_s'][-1]:.0f} "
                                "samples/s)")
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, dict(logs))
        finally:
            for cb in self.callbacks:
                cb.on_fit_end(self)
        if self.stop_reason and self.verbose:
            self._print(self.stop_reason)
        return self.history

    def _train_epoch(self, loader, epoch: int, epochs: int, batch_cbs: list):
        model, opt, loss_fn, metrics = self.model, self.optimizer, self.loss_fn, self.metrics
        for m in metrics:
            m.reset()
        model.train()
        clip = None
        if self.grad_clip_norm is not None:
            from deepbox.nn.utils import clip_grad_norm_

            params = [p for g in opt.param_groups for p in g["params"]]
            clip = lambda: clip_grad_norm_(params, self.grad_clip_norm)
        loss_sum, n_total = 0.0, 0
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = ProgressBar(total, f"epoch {epoch + 1}/{epochs}", self.verbose)

        def postfix():
            d = {"loss": loss_sum / max(n_total, 1)}
            d.update({m.name: m.compute() for m in metrics if m.scalar})
            return d

        try:
            for step, batch in enumerate(loader):
                x, y = _split_batch(batch)
                out = model(*x) if isinstance(x, tuple) else model(x)
                loss = loss_fn(out, y)
                lv = float(loss.item())
                if not math.isfinite(lv) and self.on_nonfinite != "ignore":
                    msg = (f"the loss became {lv} at epoch {epoch + 1}, step {step + 1} (optimiser step "
                           f"{self.global_step + 1} overall); training stopped before that step, so the weights "
                           f"are those after the previous one. Try a lower learning rate, gradient clipping "
                           f"(grad_clip_norm) or check the inputs for NaN/inf")
                    if self.on_nonfinite == "raise":
                        raise NonFiniteLossError(msg)
                    self.stop_training, self.stop_reason = True, msg
                    return None, n_total
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip is not None:
                    clip()
                opt.step()
                self.global_step += 1
                n = _batch_len(y)
                loss_sum += lv * n
                n_total += n
                if metrics:
                    od = out._data
                    for m in metrics:
                        m.update(od, y)
                for cb in batch_cbs:
                    cb.on_train_batch_end(self, self.global_step, {"loss": lv, "batch_size": n})
                bar.update(n, postfix)
                del out, loss
        finally:
            bar.close()
        if self.distributed:
            loss_sum, n_total = _reduce_over_ranks(loss_sum, n_total, metrics)
        if n_total == 0:
            raise ValueError("the training loader gave no batches; expected at least one (is the dataset empty, "
                             "or drop_last=True with fewer samples than batch_size?)")
        logs = {"loss": loss_sum / n_total}
        logs.update({m.name: m.compute() for m in metrics if m.scalar})
        return logs, n_total

    # ------------------------------------------------------------------ evaluate / predict
    def _batches(self, data):
        """Batches of (x, y) or x from a loader, a tensor/array, or a pair of them (chunked)."""
        if isinstance(data, (Tensor, np.ndarray)):
            x = _as_tensor(data)
            for i in range(0, x.shape[0], self.predict_batch_size):
                yield x[i:i + self.predict_batch_size]
        elif isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], (Tensor, np.ndarray)):
            x, y = _as_tensor(data[0]), _as_tensor(data[1])
            for i in range(0, x.shape[0], self.predict_batch_size):
                yield x[i:i + self.predict_batch_size], y[i:i + self.predict_batch_size]
        else:
            yield from data

    def evaluate(self, loader, metrics: Iterable | None = None, desc: str = "eval") -> dict:
        """The mean loss and the metrics over ``loader`` (a DataLoader or an ``(inputs, targets)`` pair).

        Runs in eval mode under ``no_grad`` and restores the model's mode afterwards. ``metrics``
        replaces the Trainer's metrics for this call (a ``ConfusionMatrix`` gives an array).
        """
        ms = self.metrics if metrics is None else [get_metric(m) for m in metrics]
        for m in ms:
            m.reset()
        was_training = self.model.training
        self.model.eval()
        loss_sum, n_total = 0.0, 0
        total = len(loader) if hasattr(loader, "__len__") and not isinstance(loader, (tuple, Tensor)) else None
        bar = ProgressBar(total, desc, self.verbose)
        try:
            with no_grad():
                for batch in self._batches(loader):
                    x, y = _split_batch(batch)
                    out = self.model(*x) if isinstance(x, tuple) else self.model(x)
                    n = _batch_len(y)
                    loss_sum += float(self.loss_fn(out, y).item()) * n
                    n_total += n
                    for m in ms:
                        m.update(out._data, y)
                    bar.update(n)
        finally:
            bar.close()
            self.model.train(was_training)
        if self.distributed:
            loss_sum, n_total = _reduce_over_ranks(loss_sum, n_total, ms)
        if n_total == 0:
            raise ValueError("the evaluation data gave no batches; expected at least one")
        result = {"loss": loss_sum / n_total}
        result.update({m.name: m.compute() for m in ms})
        return result

    def predict(self, data) -> Tensor:
        """The model's outputs for every sample, concatenated along dim 0.

        Args:
            data: a tensor or array of inputs (run in chunks of ``predict_batch_size``), or a loader
                whose batches are inputs or ``(inputs, targets)`` pairs.
        """
        was_training = self.model.training
        self.model.eval()
        outs = []
        try:
            with no_grad():
                for batch in self._batches(data):
                    if isinstance(batch, (tuple, list)) and len(batch) == 2:
                        batch = batch[0]
                    x = _as_tensor(batch)
                    out = self.model(*x) if isinstance(x, tuple) else self.model(x)
                    outs.append(out._data)
        finally:
            self.model.train(was_training)
        if not outs:
            raise ValueError("predict got no inputs; expected at least one sample")
        return _make(np.concatenate(outs, axis=0))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything a resumed run needs: model, optimiser, scheduler, epoch, history, callbacks, RNG."""
        gen = getattr(self._train_loader, "generator", None)
        return {
            "kind": CHECKPOINT_KIND,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": {k: list(v) for k, v in self.history.items()},
            "timing": {k: list(v) for k, v in self.timing.items()},
            "model": _unwrapped(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "callbacks": [cb.state_dict() for cb in self._stateful_callbacks()],
            "rng": {"deepbox": backend.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate(), "loader": None if gen is None else gen.get_state()},
        }

    def _stateful_callbacks(self) -> list:
        """The callbacks whose state a checkpoint holds (an observer such as the inspector has none)."""
        return [cb for cb in self.callbacks if cb.has_state]

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``'s output; the next ``fit`` continues from the saved epoch."""
        if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
            raise ValueError("this is not a Trainer checkpoint (no 'kind': 'deepbox.train.Trainer'); expected a file "
                             "written by Trainer.save_checkpoint or ModelCheckpoint")
        cb_states = state.get("callbacks") or []
        stateful = self._stateful_callbacks()
        if len(cb_states) != len(stateful):
            raise ValueError(f"the checkpoint holds the state of {len(cb_states)} callbacks but this Trainer has "
                             f"{len(stateful)}; build the Trainer with the same callbacks to resume")
        if (state.get("scheduler") is None) != (self.scheduler is None):
            raise ValueError("the checkpoint and this Trainer disagree on having a learning-rate scheduler; "
                             "build the Trainer as the saved run was built")
        _unwrapped(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for cb, s in zip(stateful, cb_states):
            cb.load_state_dict(s)
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.timing = {k: list(v) for k, v in state.get("timing", self.timing).items()}
        rng = state["rng"]
        backend.set_rng_state(rng["deepbox"])
        np_state = rng["numpy"]
        np.random.set_state((np_state[0], np.asarray(getattr(np_state[1], "_data", np_state[1])), *np_state[2:]))
        py = rng["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        self._pending_loader_rng = rng.get("loader")

    def save_checkpoint(self, path, extra: dict | None = None) -> None:
        """Write ``state_dict()`` (plus ``extra`` under ``"extra"``) atomically with ``deepbox.save``."""
        from deepbox.io import save

        state = self.state_dict()
        state["extra"] = extra
        save(state, path)

    def load_checkpoint(self, path) -> dict | None:
        """Load a file from ``save_checkpoint``/``ModelCheckpoint`` into this Trainer; returns its ``extra``."""
        from deepbox.io import load

        state = load(path)
        self.load_state_dict(state)
        return state.get("extra")

    # ------------------------------------------------------------------ misc
    def _print(self, text: str) -> None:
        import sys

        print(text, file=sys.stderr, flush=True)

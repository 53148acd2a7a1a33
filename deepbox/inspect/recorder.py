"""The recorder: what happens inside a model while it trains, written to the run folder.

Every ``every`` optimiser steps the recorder arms forward hooks on the model's layers for one
step. During that step's forward pass each layer's output is summarised (``stats.summarize``:
mean, std, zeros, saturation, histogram) and a gradient hook is put on it, so that the backward
pass summarises the gradient arriving at the layer. After the optimiser step, ``step()`` adds
per layer the 2-norm of the parameters' gradients (the gradient flow), the weights' norm and the
update-to-weight ratio ``||w_after - w_before|| / ||w_before||`` (the weights are copied when the
hooks are armed), and appends one JSON line. Between recorded steps no hook is registered, so
those steps cost the model nothing; ``step()`` is then a counter and one addition.

Once per epoch, ``epoch()`` runs the model (eval mode, no gradients) on a fixed sample of test
images and records the confusion matrix, the worst-classified images, the first layer's filters
and the feature maps of one fixed image. ``deepbox.inspect.store`` describes the files.

Use it from your own loop::

    rec = deepbox.inspect.watch(model, "runs/mine", every=50, data=(x_test, y_test))
    for epoch in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            rec.step(loss=loss.item(), lr=opt.param_groups[0]["lr"])
        rec.epoch({"loss": ...})
    rec.close()

or from a Trainer with the ``deepbox.inspect.Inspector`` callback; ``deepbox inspect RUN`` serves
the page.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from deepbox.autograd.grad_mode import is_grad_enabled, no_grad
from deepbox.inspect import code as _code
from deepbox.inspect import store
from deepbox.inspect.stats import saturation_range, summarize
from deepbox.tensor import Tensor, _make

__all__ = ["Recorder", "watch"]


def _finite_or_none(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _to_uint8(a: np.ndarray, axes) -> np.ndarray:
    """Scale ``a`` to 0..255 over ``axes`` (per image / per channel min-max)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32))
    lo = a.min(axis=axes, keepdims=True)
    hi = a.max(axis=axes, keepdims=True)
    return np.round((a - lo) / np.maximum(hi - lo, 1e-12) * 255).astype(np.uint8)


def _display_images(x: np.ndarray) -> np.ndarray | None:
    """``x`` (N, C, H, W), (N, H, W) or (N, H*W) as (N, H, W, C) uint8 with C 1 or 3, or None."""
    if x.ndim == 2:
        side = int(round(math.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            return None
        x = x.reshape(-1, 1, side, side)
    elif x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        return None
    return _to_uint8(x.transpose(0, 2, 3, 1), (1, 2, 3))


class Recorder:
    """Records a model's layers while it trains into ``<run_dir>/inspect/``.

    Args:
        model: the ``deepbox.nn.Module`` being trained.
        run_dir: the run folder (created if needed); the files go to its ``inspect/`` folder and
            are appended to when it exists (a resumed run).
        every: record one optimiser step in ``every`` (the first step is recorded).
        data: optional ``(inputs, targets)`` test tensors or arrays for the per-epoch views; the
            first ``samples`` of them are used, and the first image is the fixed one whose
            feature maps are shown.
        classes: optional class names for the confusion matrix and the images.
        samples: how many test samples the per-epoch views use.
        images: how many worst-classified images are kept per epoch.
        start_step: the number of optimiser steps already taken (a resumed run).
        start_epoch: the number of epochs already completed.
    """

    def __init__(self, model, run_dir: str, every: int = 50, data=None, classes=None, samples: int = 500,
                 images: int = 16, start_step: int = 0, start_epoch: int = 0) -> None:
        from deepbox.nn import Module

        if not isinstance(model, Module):
            raise TypeError(f"the recorder watches a deepbox.nn.Module, got {type(model).__name__}")
        if not isinstance(every, (int, np.integer)) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer (record one step in 'every'), got {every!r}")
        if not isinstance(samples, (int, np.integer)) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        if data is not None:
            if not (isinstance(data, (tuple, list)) and len(data) == 2):
                raise TypeError("data must be a pair (inputs, targets) of test tensors or arrays, got "
                                f"{type(data).__name__}")
            xs = np.asarray(getattr(data[0], "_data", data[0]))[:samples]
            ys = np.asarray(getattr(data[1], "_data", data[1]))[:samples]
            if len(xs) == 0 or len(xs) != len(ys) or ys.ndim != 1:
                raise ValueError(f"data must hold as many inputs as integer class targets (1-D); got inputs "
                                 f"{np.shape(xs)} and targets {np.shape(ys)}")
            p0 = next(iter(model.parameters()), None)
            if p0 is not None and xs.dtype.kind in "uif" and xs.dtype != p0._data.dtype:
                xs = xs.astype(p0._data.dtype)  # the layers refuse inputs of another dtype
            data = (xs, ys.astype(np.int64))
        if classes is not None:
            classes = [str(c) for c in classes]
        self.model = model
        self.run_dir = run_dir
        self.dir = store.inspect_dir(run_dir)
        self.every = int(every)
        self.data = data
        self.classes = classes
        self.images = int(images)
        os.makedirs(self.dir, exist_ok=True)
        self.paths = {k: os.path.join(self.dir, f) for k, f in
                      (("meta", "meta.json"), ("code", "code.json"), ("steps", "steps.jsonl"),
                       ("epochs", "epochs.jsonl"))}
        self.layers = self._layers(model)
        self._step = int(start_step)
        self._epoch = int(start_epoch)
        self._handles: list = []
        self._armed = False
        self._pending: dict[str, dict] = {}
        self._shapes: dict[str, list] = {}
        self._traced: dict[type, list] = {}
        self._snapshot: dict[int, np.ndarray] | None = None
        self._loss_sum, self._loss_n = 0.0, 0
        self._code_written = os.path.isfile(self.paths["code"])
        self._status = "running"
        self._created = time.time()
        self._write_meta()
        if self._step % self.every == 0:
            self._arm()

    # ------------------------------------------------------------------ layers and meta
    @staticmethod
    def _layers(model) -> list[tuple[str, object]]:
        """Leaf modules, and modules that own parameters directly, in registration order."""
        out = []
        for name, m in model.named_modules():
            has_children = any(True for _ in m.children())
            own = any(True for _ in m.parameters(recurse=False))
            if not has_children or own:
                if not name and has_children:
                    name = type(m).__name__
                out.append((name or type(m).__name__, m))
        return out

    def _write_meta(self) -> None:
        layers = []
        for name, m in self.layers:
            params = list(m.parameters(recurse=False))
            layers.append({"name": name, "type": type(m).__name__, "shape": self._shapes.get(name),
                           "params": int(sum(p.numel() for p in params)),
                           "trainable": int(sum(p.numel() for p in params if p.requires_grad)),
                           "saturating": saturation_range(m) is not None, "repr": m.extra_repr()})
        doc = {"format": store.FORMAT, "model": type(self.model).__name__, "every": self.every,
               "created": self._created, "updated": time.time(), "status": self._status,
               "classes": self.classes, "n_params": int(sum(p.numel() for p in self.model.parameters())),
               "layers": layers, "has_data": self.data is not None, "pid": os.getpid()}
        store.write_json(self.paths["meta"], doc)

    def _write_code(self) -> None:
        doc = {}
        for _, m in self.layers:
            t = type(m).__name__
            if t not in doc:
                doc[t] = _code.layer_code(m, self._traced.get(type(m)))
        store.write_json(self.paths["code"], doc)
        self._code_written = True

    # ------------------------------------------------------------------ hooks
    def _arm(self) -> None:
        if self._armed:
            return
        self._pending = {}
        self._snapshot = {id(p): p._data.copy() for p in self.model.parameters() if p.requires_grad}
        for name, m in self.layers:
            self._handles.append(m.register_forward_hook(self._forward_hook(name, saturation_range(m))))
        self._armed = True

    def _disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._armed = False

    def _forward_hook(self, name: str, sat):
        def hook(module, inputs, output):
            if not is_grad_enabled():  # an evaluation between steps: not what trains
                return
            out = output[0] if isinstance(output, (tuple, list)) and output else output
            if not isinstance(out, Tensor):
                return
            entry = self._pending.setdefault(name, {})
            entry["act"] = summarize(out._data, sat)
            self._shapes[name] = list(out.shape[1:])
            t = type(module)
            if t not in self._traced and not self._code_written:
                self._traced[t] = _code.traced_ops(out, [a for a in inputs if isinstance(a, Tensor)])
            if out.requires_grad:
                def grad_hook(g):
                    entry["grad"] = summarize(getattr(g, "_data", g))
                out.register_hook(grad_hook)
        return hook

    # ------------------------------------------------------------------ per step
    def step(self, loss=None, lr=None, step: int | None = None, **scalars) -> None:
        """Call after each optimiser step; records the step when the hooks were armed for it.

        Args:
            loss: this step's loss (a float or a scalar tensor).
            lr: the learning rate (shown on the page).
            step: the optimiser step number (1-based) when the caller counts them; default the
                recorder's own count.
            scalars: more numbers to record with the step (JSON-ready floats).
        """
        if isinstance(loss, Tensor):
            loss = loss.item()
        s = self._step + 1 if step is None else int(step)
        self._step = s
        lv = _finite_or_none(loss)
        if lv is not None:
            self._loss_sum += lv
            self._loss_n += 1
        if self._armed:
            self._disarm()
            self._record(s, lv, lr, scalars)
        if s % self.every == 0:
            self._arm()

    def _record(self, s: int, loss, lr, scalars: dict) -> None:
        snap = self._snapshot or {}
        layers = {}
        for name, m in self.layers:
            entry = self._pending.get(name, {})
            params = [(pn, p) for pn, p in m.named_parameters(recurse=False) if p.requires_grad]
            if params:
                g2 = w2 = u2 = b2 = 0.0
                has_grad = has_before = False
                for _, p in params:
                    w = p._data
                    w2 += float(np.vdot(w, w))
                    before = snap.get(id(p))
                    if before is not None:
                        d = w - before
                        u2 += float(np.vdot(d, d))
                        b2 += float(np.vdot(before, before))
                        has_before = True
                    if p.grad is not None:
                        g = p.grad._data
                        g2 += float(np.vdot(g, g))
                        has_grad = True
                w_norm = math.sqrt(w2)
                entry["wnorm"] = _finite_or_none(w_norm)
                entry["gnorm"] = _finite_or_none(math.sqrt(g2)) if has_grad else None
                entry["upd"] = _finite_or_none(math.sqrt(u2) / max(math.sqrt(b2), 1e-12)) if has_before else None
                main = dict(params).get("weight", params[0][1])
                if main.grad is not None:
                    entry["wgrad"] = summarize(main.grad._data)
            if entry:
                layers[name] = entry
        rec = {"step": s, "epoch": self._epoch, "time": time.time(), "loss": loss,
               "loss_mean": self._loss_sum / self._loss_n if self._loss_n else None, "lr": _finite_or_none(lr),
               "layers": layers}
        for k, v in scalars.items():
            rec[str(k)] = _finite_or_none(v)
        self._loss_sum, self._loss_n = 0.0, 0
        self._pending = {}
        self._snapshot = None
        store.append_jsonl(self.paths["steps"], rec)
        if not self._code_written:
            self._write_meta()  # output shapes are known now
            self._write_code()

    # ------------------------------------------------------------------ per epoch
    def epoch(self, logs: dict | None = None, epoch: int | None = None) -> None:
        """Call at the end of each epoch: records ``logs`` and, with ``data``, the per-epoch views."""
        e = self._epoch + 1 if epoch is None else int(epoch)
        self._epoch = e
        rec = {"epoch": e, "step": self._step, "time": time.time(),
               "logs": {str(k): _finite_or_none(v) for k, v in (logs or {}).items()
                        if _finite_or_none(v) is not None}}
        if self.data is not None:
            arrays, info = self._views()
            name = f"epoch-{e:04d}.npz"
            store.save_arrays(os.path.join(self.dir, name), arrays)
            rec.update(info)
            rec["arrays"] = name
        store.append_jsonl(self.paths["epochs"], rec)
        self._write_meta()

    def _views(self) -> tuple[dict, dict]:
        x, y = self.data
        model = self.model
        was_training = model.training
        was_armed = self._armed
        self._disarm()
        fmaps: list[tuple[str, np.ndarray]] = []

        def capture(name):
            def hook(module, inputs, output):
                out = output[0] if isinstance(output, (tuple, list)) and output else output
                if isinstance(out, Tensor) and out.dim() == 4 and out.shape[2] > 1 and out.shape[3] > 1:
                    fmaps.append((name, out._data[0, :16].copy()))
            return hook

        model.eval()
        try:
            with no_grad():
                logits = np.concatenate([model(_make(x[i:i + 250]))._data for i in range(0, len(x), 250)])
                handles = [m.register_forward_hook(capture(n)) for n, m in self.layers]
                try:
                    model(_make(x[:1]))
                finally:
                    for h in handles:
                        h.remove()
        finally:
            model.train(was_training)
            if was_armed:
                self._arm()
        logits = logits.reshape(len(x), -1).astype(np.float64)
        z = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        pred = prob.argmax(axis=1)
        k = max(prob.shape[1], int(y.max()) + 1)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (y, pred), 1)
        p_true = prob[np.arange(len(y)), np.minimum(y, prob.shape[1] - 1)]
        wrong = np.flatnonzero(pred != y)
        worst = wrong[np.argsort(p_true[wrong], kind="stable")][: self.images]
        arrays: dict[str, np.ndarray] = {}
        shown = _display_images(x)
        if shown is not None:
            arrays["worst"] = shown[worst] if len(worst) else np.zeros((0,) + shown.shape[1:], np.uint8)
            arrays["fixed"] = shown[:1]
        filters, fkind = self._filters(shown)
        if filters is not None:
            arrays["filters"] = filters
        if len(fmaps) > 8:  # spread the layers shown over the depth of the network
            fmaps = [fmaps[i] for i in np.linspace(0, len(fmaps) - 1, 8).round().astype(int)]
        for i, (_, fm) in enumerate(fmaps):
            arrays[f"fmap{i}"] = _to_uint8(fm, (1, 2))
        info = {"accuracy_sample": float((pred == y).mean()), "n_sample": int(len(y)),
                "confusion": confusion.tolist(),
                "worst": [{"index": int(i), "label": int(y[i]), "pred": int(pred[i]), "p_true": float(p_true[i]),
                           "p_pred": float(prob[i, pred[i]])} for i in worst],
                "fmaps": [n for n, _ in fmaps], "filters_of": fkind, "fixed_label": int(y[0]),
                "fixed_pred": int(pred[0])}
        return arrays, info

    def _filters(self, shown) -> tuple[np.ndarray | None, str | None]:
        """The first layer's weights as images: conv kernels, or a linear layer's rows when they fit the input."""
        for name, m in self.layers:
            w = getattr(m, "weight", None)
            if not isinstance(w, Tensor):
                continue
            w = w._data
            if w.ndim == 4:  # (out, in, kh, kw)
                w = w[:32]
                img = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w[:, :1].transpose(0, 2, 3, 1)
                return _to_uint8(img, (1, 2, 3)), name
            if w.ndim == 2 and shown is not None and w.shape[1] == int(np.prod(shown.shape[1:])):
                h, wd, c = shown.shape[1:]
                img = w[:32].reshape(-1, c, h, wd).transpose(0, 2, 3, 1)
                return _to_uint8(img, (1, 2, 3)), name
            return None, None
        return None, None

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Remove the hooks and mark the run finished (the page stops waiting for more)."""
        self._disarm()
        self._status = "finished"
        self._write_meta()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def watch(model, run_dir: str, every: int = 50, data=None, classes=None, samples: int = 500) -> Recorder:
    """Start recording ``model`` into ``run_dir``; call ``rec.step(loss=...)`` after each optimiser step.

    See ``Recorder`` for the arguments; ``deepbox inspect RUN_DIR`` shows the page.
    """
    return Recorder(model, run_dir, every=every, data=data, classes=classes, samples=samples)

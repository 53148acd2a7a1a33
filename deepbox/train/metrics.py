"""Metrics for the Trainer: accumulated as counts over batches, computed once per epoch.

Every metric has ``reset()``, ``update(output, target)`` and ``compute()``. ``update`` takes
deepbox tensors (or NumPy arrays) and adds integer counts or running sums, so an epoch's value
is exact whatever the batch sizes, and the per-batch cost is one ``argmax`` and a ``bincount``.

Classification metrics accept as ``output`` either scores with the class along dim 1
(logits or probabilities, shape ``(N, C)`` or ``(N, C, d1, ...)``) or predicted class indices
of the target's shape; ``target`` holds class indices ``(N,)`` or ``(N, d1, ...)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Metric", "Accuracy", "ConfusionMatrix", "Precision", "Recall", "F1", "MeanSquaredError",
           "MeanAbsoluteError", "get_metric"]


def _array(x) -> np.ndarray:
    data = getattr(x, "_data", None)
    return np.asarray(x if data is None else data)


def _labels(output, target) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true class indices, both flattened to 1-D int64."""
    out, tgt = _array(output), _array(target)
    if out.ndim == tgt.ndim + 1 and out.shape[:1] + out.shape[2:] == tgt.shape:
        pred = out.argmax(axis=1)
    elif out.shape == tgt.shape:
        if out.dtype.kind == "f":
            raise ValueError(
                f"a classification metric got floating-point outputs of the target's shape {tuple(tgt.shape)}; "
                "expected scores of shape (N, C, ...) or predicted class indices (integers)"
            )
        pred = out
    else:
        raise ValueError(
            f"a classification metric got outputs of shape {tuple(out.shape)} and targets of shape "
            f"{tuple(tgt.shape)}; expected outputs (N, C, ...) with targets (N, ...), or both (N, ...)"
        )
    return pred.reshape(-1).astype(np.int64, copy=False), tgt.reshape(-1).astype(np.int64, copy=False)


class Metric:
    """Base class: a running statistic over batches.

    ``name`` is the key under which the Trainer's history records it (``val_`` prepended for
    validation). ``scalar`` is False for metrics whose value is not one number (a confusion
    matrix); those are kept out of the history and available from ``Trainer.evaluate``.
    """

    name = "metric"
    scalar = True
    higher_is_better = True
    # the attributes that add up over batches (set by reset): a data-parallel Trainer sums them over ranks
    counts: tuple[str, ...] | None = None

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, output, target) -> None:
        raise NotImplementedError

    def compute(self):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Accuracy(Metric):
    """The fraction of samples whose true class is among the ``top_k`` highest scores.

    Args:
        top_k: count a sample as correct when its target is among the k best-scored classes.
            ``top_k > 1`` needs scores (N, C, ...), not class indices.
    """

    def __init__(self, top_k: int = 1) -> None:
        if not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"Accuracy: top_k must be a positive integer, got {top_k!r}")
        self.top_k = int(top_k)
        self.name = "accuracy" if self.top_k == 1 else f"top{self.top_k}_accuracy"
        self.reset()

    counts = ("correct", "total")

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output, target) -> None:
        if self.top_k == 1:
            pred, tgt = _labels(output, target)
            self.correct += int(np.count_nonzero(pred == tgt))
            self.total += tgt.size
            return
        out, tgt = _array(output), _array(target)
        if out.ndim != tgt.ndim + 1:
            raise ValueError(f"Accuracy(top_k={self.top_k}) needs scores of shape (N, C, ...), got outputs of "
                             f"shape {tuple(out.shape)} for targets of shape {tuple(tgt.shape)}")
        k = min(self.top_k, out.shape[1])
        # argpartition finds the k largest without a full sort; ties at the k-th score may go either way
        top = np.argpartition(-out, k - 1, axis=1)[:, :k] if k < out.shape[1] else None
        if top is None:
            hit = np.ones(tgt.shape, dtype=bool)
        else:
            hit = (top == np.expand_dims(tgt, 1)).any(axis=1)
        self.correct += int(np.count_nonzero(hit))
        self.total += tgt.size

    def compute(self) -> float:
        return self.correct / self.total if self.total else float("nan")


class ConfusionMatrix(Metric):
    """Counts ``matrix[true, predicted]`` over all samples (rows: true class, columns: prediction).

    Args:
        num_classes: the number of classes C; the matrix is C x C.
    """

    scalar = False
    name = "confusion_matrix"

    def __init__(self, num_classes: int) -> None:
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.reset()

    counts = ("matrix",)

    def reset(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, output, target) -> None:
        pred, tgt = _labels(output, target)
        k = self.num_classes
        bad = (tgt < 0) | (tgt >= k) | (pred < 0) | (pred >= k)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"ConfusionMatrix(num_classes={k}) got class {int(tgt[i])} (target) / "
                             f"{int(pred[i])} (prediction); expected classes 0..{k - 1}")
        self.matrix += np.bincount(tgt * k + pred, minlength=k * k).reshape(k, k)

    def compute(self) -> np.ndarray:
        return self.matrix.copy()


class _FromConfusion(Metric):
    """Precision/recall/F1 from a confusion matrix that grows to fit the classes seen."""

    _kind = ""

    def __init__(self, num_classes: int | None = None, average: str = "macro") -> None:
        if average not in ("macro", "micro"):
            raise ValueError(f"{type(self).__name__}: average must be 'macro' or 'micro', got {average!r}")
        if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive integer or None, "
                             f"got {num_classes!r}")
        self.num_classes = num_classes
        self.average = average
        self.name = f"{self._kind}_{average}"
        self.reset()

    counts = ("matrix",)

    def reset(self) -> None:
        self.matrix = np.zeros((self.num_classes or 0,) * 2, dtype=np.int64)

    def update(self, output, target) -> None:
        pred, tgt = _labels(output, target)
        if pred.size == 0:
            return
        if min(int(pred.min()), int(tgt.min())) < 0:
            raise ValueError(f"{type(self).__name__} got a negative class index; expected classes 0..C-1")
        k = max(self.matrix.shape[0], int(pred.max()) + 1, int(tgt.max()) + 1)
        if self.num_classes is not None and k > self.num_classes:
            raise ValueError(f"{type(self).__name__}(num_classes={self.num_classes}) got class {k - 1}; "
                             f"expected classes 0..{self.num_classes - 1}")
        if k > self.matrix.shape[0]:
            grown = np.zeros((k, k), dtype=np.int64)
            n = self.matrix.shape[0]
            grown[:n, :n] = self.matrix
            self.matrix = grown
        self.matrix += np.bincount(tgt * k + pred, minlength=k * k).reshape(k, k)

    def _per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.matrix
        return np.diag(m).astype(np.float64), m.sum(axis=0).astype(np.float64), m.sum(axis=1).astype(np.float64)

    @staticmethod
    def _ratio(num, den):
        # 0 where the denominator is 0, as scikit-learn's zero_division=0
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    def compute(self) -> float:
        tp, predicted, actual = self._per_class()
        if self.average == "micro":
            tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
            present = np.ones(1, dtype=bool)
        else:
            # the classes seen in targets or predictions, as scikit-learn's default labels
            present = (predicted > 0) | (actual > 0)
        if not present.any():
            return float("nan")
        precision, recall = self._ratio(tp, predicted), self._ratio(tp, actual)
        if self._kind == "precision":
            value = precision
        elif self._kind == "recall":
            value = recall
        else:
            value = self._ratio(2 * precision * recall, precision + recall)
        return float(value[present].mean())


class Precision(_FromConfusion):
    """Precision tp / (tp + fp), averaged over classes (``macro``) or over all samples (``micro``).

    Args:
        num_classes: C when known (checks class indices); None lets the counts grow to the classes seen.
        average: ``"macro"`` (the unweighted mean over the classes that occur in targets or
            predictions, as scikit-learn) or ``"micro"`` (global counts; equals accuracy for
            single-label classification). A class never predicted has precision 0.
    """

    _kind = "precision"


class Recall(_FromConfusion):
    """Recall tp / (tp + fn), averaged ``macro`` or ``micro`` (see ``Precision``)."""

    _kind = "recall"


class F1(_FromConfusion):
    """F1 = 2 P R / (P + R) per class, averaged ``macro`` or ``micro`` (see ``Precision``)."""

    _kind = "f1"


class _MeanError(Metric):
    higher_is_better = False

    def __init__(self) -> None:
        self.reset()

    counts = ("total", "count")

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def _err(self, diff):
        raise NotImplementedError

    def update(self, output, target) -> None:
        out, tgt = _array(output), _array(target)
        try:
            diff = out - tgt
        except ValueError:
            raise ValueError(f"{type(self).__name__} got outputs of shape {tuple(out.shape)} and targets of "
                             f"shape {tuple(tgt.shape)}; expected shapes that broadcast") from None
        self.total += float(self._err(diff.astype(np.float64, copy=False)).sum())
        self.count += diff.size

    def compute(self) -> float:
        return self.total / self.count if self.count else float("nan")


class MeanSquaredError(_MeanError):
    """The mean of ``(output - target) ** 2`` over every element."""

    name = "mse"

    def _err(self, diff):
        return diff * diff


class MeanAbsoluteError(_MeanError):
    """The mean of ``|output - target|`` over every element."""

    name = "mae"

    def _err(self, diff):
        return np.abs(diff)


_BY_NAME = {
    "accuracy": lambda: Accuracy(), "acc": lambda: Accuracy(), "top5": lambda: Accuracy(top_k=5),
    "top5_accuracy": lambda: Accuracy(top_k=5), "precision": lambda: Precision(), "recall": lambda: Recall(),
    "f1": lambda: F1(), "precision_macro": lambda: Precision(), "recall_macro": lambda: Recall(),
    "f1_macro": lambda: F1(), "precision_micro": lambda: Precision(average="micro"),
    "recall_micro": lambda: Recall(average="micro"), "f1_micro": lambda: F1(average="micro"),
    "mse": lambda: MeanSquaredError(), "mae": lambda: MeanAbsoluteError(),
}


def get_metric(metric) -> Metric:
    """A ``Metric`` instance from an instance or a name (``"accuracy"``, ``"top5"``, ``"f1"``, ``"mse"``, ...)."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str) and metric in _BY_NAME:
        return _BY_NAME[metric]()
    raise ValueError(f"unknown metric {metric!r}; expected a deepbox.train.Metric or one of {', '.join(_BY_NAME)}")

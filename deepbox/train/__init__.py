"""``deepbox.train``: the Trainer (fit/evaluate/predict), callbacks, metrics and progress bars."""
from __future__ import annotations

from deepbox.train.callbacks import (
           Callback,
           CSVLogger,
           EarlyStopping,
           JSONLogger,
           LRSchedulerCallback,
           ModelCheckpoint,
           TensorBoardLogger,
)
from deepbox.train.metrics import (
           F1,
           Accuracy,
           ConfusionMatrix,
           MeanAbsoluteError,
           MeanSquaredError,
           Metric,
           Precision,
           Recall,
           get_metric,
)
from deepbox.train.trainer import NonFiniteLossError, Trainer

__all__ = ["Trainer", "NonFiniteLossError", "Callback", "EarlyStopping", "ModelCheckpoint", "LRSchedulerCallback",
           "CSVLogger", "JSONLogger", "TensorBoardLogger", "Metric", "Accuracy", "ConfusionMatrix", "Precision",
           "Recall", "F1", "MeanSquaredError", "MeanAbsoluteError", "get_metric"]

"""``Inspector``: the recorder as a ``Trainer`` callback."""
from __future__ import annotations

from deepbox.inspect.recorder import Recorder
from deepbox.train.callbacks import Callback

__all__ = ["Inspector"]


class Inspector(Callback):
    """Record the model's layers while ``Trainer.fit`` runs, for ``deepbox inspect RUN``.

    Args:
        run_dir: the run folder; the files go to its ``inspect/`` folder.
        every: record one optimiser step in ``every`` (50: under 5 % of a step's time).
        data: optional ``(inputs, targets)`` test tensors for the per-epoch views (confusion
            matrix, worst-classified images, filters, feature maps).
        classes: optional class names.
        samples: how many test samples the per-epoch views use.

    Example::

        trainer = Trainer(model, opt, nn.CrossEntropyLoss(), metrics=["accuracy"],
                          callbacks=[Inspector("runs/mine", data=(x_test, y_test))])
    """

    order = 15  # after the schedule, before the checkpoint
    has_state = False  # an observer: a run resumes with or without it

    def __init__(self, run_dir: str, every: int = 50, data=None, classes=None, samples: int = 500) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"Inspector: every must be a positive integer, got {every!r}")
        self.run_dir, self.every, self.data, self.classes, self.samples = run_dir, every, data, classes, samples
        self.recorder: Recorder | None = None

    def on_fit_begin(self, trainer) -> None:
        self.recorder = Recorder(trainer.model, self.run_dir, every=self.every, data=self.data, classes=self.classes,
                                 samples=self.samples, start_step=trainer.global_step, start_epoch=trainer.epoch)

    def on_train_batch_end(self, trainer, step: int, logs: dict) -> None:
        self.recorder.step(loss=logs.get("loss"), lr=trainer.optimizer.param_groups[0]["lr"], step=step)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        self.recorder.epoch(logs, epoch=epoch + 1)

    def on_fit_end(self, trainer) -> None:
        if self.recorder is not None:
            self.recorder.close()

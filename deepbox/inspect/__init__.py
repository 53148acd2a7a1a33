"""``deepbox.inspect``: look inside a model while it trains.

* ``watch(model, run_dir, every=50, data=(x_test, y_test))`` returns a ``Recorder``; call
  ``rec.step(loss=...)`` after each optimiser step and ``rec.epoch(logs)`` after each epoch.
* ``Inspector(run_dir, ...)`` does the same as a ``deepbox.train.Trainer`` callback.
* ``deepbox inspect RUN`` (``deepbox.inspect.server``) serves a page that shows the run, live.
"""
from __future__ import annotations

from deepbox.inspect.callback import Inspector
from deepbox.inspect.recorder import Recorder, watch

__all__ = ["watch", "Recorder", "Inspector"]

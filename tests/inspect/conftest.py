"""A small recorded run shared by the server, CLI and browser tests."""
from __future__ import annotations

import numpy as np
import pytest

import deepbox
import deepbox.nn as nn
import deepbox.nn.functional as F
from deepbox.inspect import watch


def record_run(folder, epochs: int = 3, steps_per_epoch: int = 4, every: int = 1, pause: float = 0.0) -> None:
    """Train a tiny CNN on random 8x8 images for a few steps, recording everything."""
    import time

    deepbox.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 16), nn.Sigmoid(), nn.Linear(16, 3))
    rng = np.random.default_rng(0)
    x = deepbox.from_numpy(rng.standard_normal((48, 1, 8, 8)).astype(np.float32))
    y = deepbox.from_numpy(rng.integers(0, 3, 48))
    opt = deepbox.optim.SGD(model.parameters(), lr=0.1)
    rec = watch(model, str(folder), every=every, data=(x[:24], y[:24]), classes=["cat", "dog", "bird"])
    for _ in range(epochs):
        for i in range(steps_per_epoch):
            xb, yb = x[i * 12:(i + 1) * 12], y[i * 12:(i + 1) * 12]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss.item(), lr=0.1)
        rec.epoch({"loss": loss.item(), "accuracy": 0.5})
        time.sleep(pause)
    rec.close()


@pytest.fixture(scope="session")
def recorded_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect") / "run"
    record_run(folder)
    return folder

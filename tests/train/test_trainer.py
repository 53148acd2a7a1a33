"""The Trainer on a small synthetic problem: learning, evaluation against PyTorch, early stopping,
exact resumption from a checkpoint, the NaN/inf guard, schedules and loggers."""
from __future__ import annotations

import csv
import json
import math
import os
import sys

import numpy as np
import pytest
import torch

import deepbox
from deepbox import nn
from deepbox.data import DataLoader, TensorDataset
from deepbox.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LRSchedulerCallback,
    ModelCheckpoint,
    NonFiniteLossError,
    TensorBoardLogger,
    Trainer,
)
from tests.helpers import copy_torch_weights


def _problem(n=256, d=8, k=3, seed=0, label_noise=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, k)).astype(np.float32)
    y = (x @ w).argmax(1).astype(np.int64)
    flip = rng.random(n) < label_noise
    y[flip] = rng.integers(0, k, size=int(flip.sum()))
    return deepbox.from_numpy(x), deepbox.from_numpy(y)


def _model(d=8, k=3, dropout=0.0):
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, k))


def _loader(x, y, batch_size=32, shuffle=True, generator=None):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


def test_loss_falls_and_accuracy_rises():
    x, y = _problem()
    model = _model()
    t = Trainer(model, deepbox.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(),
                metrics=["accuracy"], verbose=0)
    h = t.fit(_loader(x, y), _loader(x, y, shuffle=False), epochs=8)
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 8 for v in h.values())
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["val_accuracy"][-1] > 0.9
    assert t.epoch == 8 and t.global_step == 8 * 8


def test_evaluate_and_predict_match_pytorch():
    x, y = _problem(n=100)
    model = _model()
    t = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), metrics=["accuracy"],
                verbose=0, predict_batch_size=30)  # chunks of 30, 30, 30, 10
    t.fit(_loader(x, y), epochs=2)
    tm = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.0), torch.nn.Linear(16, 3))
    tm.load_state_dict({k: torch.from_numpy(v._data.copy()) for k, v in model.state_dict().items()})
    tx, ty = torch.from_numpy(x._data), torch.from_numpy(y._data)
    with torch.no_grad():
        logits = tm(tx)
        loss = torch.nn.functional.cross_entropy(logits, ty).item()
    r = t.evaluate((x, y))
    assert r["loss"] == pytest.approx(loss, rel=1e-5)
    assert r["accuracy"] == pytest.approx((logits.argmax(1) == ty).float().mean().item())
    np.testing.assert_allclose(t.predict(x)._data, logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.predict(_loader(x, y, shuffle=False))._data, logits.numpy(), rtol=1e-5, atol=1e-6)


def test_one_epoch_matches_a_hand_written_pytorch_loop():
    x, y = _problem(n=96)
    model = _model()
    tm = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.0), torch.nn.Linear(16, 3))
    copy_torch_weights(tm, model)
    t = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), nn.CrossEntropyLoss(),
                verbose=0, grad_clip_norm=1.0)
    t.fit(_loader(x, y, shuffle=False), epochs=1)
    opt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for i in range(0, 96, 32):
        out = tm(torch.from_numpy(x._data[i:i + 32]))
        loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y._data[i:i + 32]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert t.history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-5)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k]._data, v.numpy(), rtol=1e-5, atol=1e-6)


def test_early_stopping_fires_when_nothing_improves():
    x, y = _problem()
    model = _model()
    es = EarlyStopping(monitor="val_loss", patience=2)
    t = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(), callbacks=[es],
                verbose=0)
    h = t.fit(_loader(x, y), _loader(x, y, shuffle=False), epochs=20)
    assert len(h["loss"]) == 3  # epoch 1 sets the best, epochs 2 and 3 do not improve
    assert es.stopped_epoch == 2 and es.best_epoch == 0
    assert "val_loss has not improved for 2 epochs" in t.stop_reason


def test_early_stopping_restores_the_best_weights():
    x, y = _problem(n=128, label_noise=0.0)
    xv, yv = _problem(n=64, seed=5)
    yv = deepbox.from_numpy(np.random.default_rng(0).permutation(yv._data))  # validation labels that do not fit

    class Snapshots(Callback):
        def __init__(self):
            self.weights = []

        def on_epoch_end(self, trainer, epoch, logs):
            self.weights.append({k: v._data.copy() for k, v in trainer.model.state_dict().items()})

    snaps = Snapshots()
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model = _model()
    t = Trainer(model, deepbox.optim.Adam(model.parameters(), lr=0.05), nn.CrossEntropyLoss(),
                callbacks=[snaps, es], verbose=0)
    h = t.fit(_loader(x, y), _loader(xv, yv, shuffle=False), epochs=30)
    assert es.stopped_epoch is not None and len(h["loss"]) < 30
    best = int(np.argmin(h["val_loss"]))
    assert es.best_epoch == best and best != len(h["loss"]) - 1
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v._data, snaps.weights[best][k])


def _resumable(tmp, generator_seed, epochs_first):
    """A trainer with shuffling, dropout, a schedule, early stopping and a checkpoint."""
    x, y = _problem(n=160, label_noise=0.1)
    gen = None
    if generator_seed is not None:
        gen = deepbox.Generator()
        gen.manual_seed(generator_seed)
    train = _loader(x, y, batch_size=24, generator=gen)
    val = _loader(x, y, batch_size=64, shuffle=False)
    model = _model(dropout=0.3)
    opt = deepbox.optim.Adam(model.parameters(), lr=3e-3)
    sched = deepbox.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    cbs = [EarlyStopping(monitor="val_loss", patience=10), ModelCheckpoint(tmp, monitor="val_accuracy")]
    t = Trainer(model, opt, nn.CrossEntropyLoss(), metrics=["accuracy"], scheduler=sched, callbacks=cbs, verbose=0)
    return t, train, val


@pytest.mark.parametrize("generator_seed", [None, 7])
def test_two_plus_two_epochs_resumed_equal_four(tmp_path, generator_seed):
    deepbox.manual_seed(123)
    full, train, val = _resumable(tmp_path / "full", generator_seed, 4)
    h_full = full.fit(train, val, epochs=4)

    deepbox.manual_seed(123)
    first, train, val = _resumable(tmp_path / "run", generator_seed, 2)
    first.fit(train, val, epochs=2)
    deepbox.manual_seed(999)  # anything that happens between the two sessions must not matter
    np.random.seed(999)
    second, train, val = _resumable(tmp_path / "run", generator_seed, 2)
    second.load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert second.epoch == 2
    h_resumed = second.fit(train, val, epochs=4)

    assert h_resumed == h_full  # exactly, every float of every epoch
    for k, v in full.model.state_dict().items():
        np.testing.assert_array_equal(second.model.state_dict()[k]._data, v._data)
    assert second.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]
    assert second.callbacks[1].best == full.callbacks[1].best  # early stopping's state travelled too
    assert os.path.isfile(tmp_path / "run" / "best.safetensors")


def test_resume_refuses_a_trainer_built_differently(tmp_path):
    x, y = _problem(n=64)
    model = _model()
    t = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), verbose=0)
    t.fit(_loader(x, y), epochs=1)
    t.save_checkpoint(tmp_path / "c.safetensors")
    other = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), verbose=0,
                    callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="state of 0 callbacks but this Trainer has 1"):
        other.load_checkpoint(tmp_path / "c.safetensors")
    deepbox.save({"model": model.state_dict()}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not a Trainer checkpoint"):
        t.load_checkpoint(tmp_path / "plain.safetensors")


def test_nan_guard_names_epoch_and_step_and_keeps_weights_finite(tmp_path):
    x, y = _problem(n=128)
    xd = x._data.copy()
    xd[70] = np.nan  # batch 3 of epoch 2 (batches of 32, no shuffling) ... but epoch 1 reaches it first
    model = _model()
    ckpt = ModelCheckpoint(tmp_path, save_best=False)
    t = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), callbacks=[ckpt],
                verbose=0)
    t.fit(_loader(x, y, shuffle=False), epochs=1)  # a clean first epoch and its checkpoint
    before = (tmp_path / "last.safetensors").read_bytes()
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, step 3 \(optimiser step 7 overall\)"):
        t.fit(_loader(deepbox.from_numpy(xd), y, shuffle=False), epochs=3)
    assert all(np.isfinite(p._data).all() for p in model.parameters())
    assert t.epoch == 1 and len(t.history["loss"]) == 1
    assert (tmp_path / "last.safetensors").read_bytes() == before  # the earlier checkpoint is intact

    stop = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), verbose=0,
                   on_nonfinite="stop")
    h = stop.fit(_loader(deepbox.from_numpy(xd), y, shuffle=False), epochs=3)
    assert h == {} and "epoch 1, step 3" in stop.stop_reason


def test_lr_schedule_per_step_and_plateau():
    x, y = _problem(n=128)
    model = _model()
    opt = deepbox.optim.SGD(model.parameters(), lr=1.0)
    sched = deepbox.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    t = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, scheduler_interval="step", verbose=0)
    h = t.fit(_loader(x, y), epochs=3)  # 4 steps per epoch
    tm = torch.nn.Linear(1, 1)
    topt = torch.optim.SGD(tm.parameters(), lr=1.0)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5)
    expected = []
    for step in range(12):
        if step % 4 == 0:
            expected.append(topt.param_groups[0]["lr"])
        topt.step()
        tsched.step()
    assert h["lr"] == expected
    assert opt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]

    plateau = deepbox.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="use interval='epoch'"):
        LRSchedulerCallback(plateau, interval="step")


def test_plateau_reduces_the_rate():
    x, y = _problem(n=64)
    model = _model()
    opt = deepbox.optim.SGD(model.parameters(), lr=1e-6)  # too small to move the loss by 10 %
    plateau = deepbox.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=0.1)
    t = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=plateau, verbose=0)
    h = t.fit(_loader(x, y, shuffle=False), _loader(x, y, shuffle=False), epochs=4)
    # epoch 1 sets the best; epochs 2 and 3 are bad; after the second bad one (> patience) the rate halves
    assert h["lr"] == [1e-6, 1e-6, 1e-6, 5e-7]


def test_csv_json_and_tensorboard_loggers(tmp_path):
    x, y = _problem(n=64)
    model = _model()
    t = Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), metrics=["accuracy"],
                callbacks=[CSVLogger(tmp_path / "h.csv"), JSONLogger(tmp_path / "h.json"),
                           TensorBoardLogger(tmp_path / "tb", log_every_n_steps=1)], verbose=0)
    h = t.fit(_loader(x, y), epochs=2)
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["loss"]) for r in rows] == h["loss"]
    assert [float(r["accuracy"]) for r in rows] == h["accuracy"]
    assert "epoch_time_s" in rows[0]
    doc = json.loads((tmp_path / "h.json").read_text())
    assert doc["history"] == h and doc["epochs"] == 2
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))


def test_tensorboard_logger_without_tensorboardx(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'deepbox\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)


def test_per_batch_hooks_only_for_callbacks_that_want_them():
    x, y = _problem(n=64)
    calls = []

    class Batches(Callback):
        def on_train_batch_end(self, trainer, step, logs):
            calls.append((step, logs["batch_size"], math.isfinite(logs["loss"])))

    model = _model()
    Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), callbacks=[Batches()],
            verbose=0).fit(_loader(x, y, batch_size=24), epochs=1)
    assert calls == [(1, 24, True), (2, 24, True), (3, 16, True)]


def test_bad_arguments_are_named():
    model = _model()
    opt = deepbox.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="on_nonfinite must be"):
        Trainer(model, opt, nn.CrossEntropyLoss(), on_nonfinite="warn")
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        Trainer(model, opt, "cross_entropy")
    with pytest.raises(TypeError, match="Callback instances"):
        Trainer(model, opt, nn.CrossEntropyLoss(), callbacks=[print])
    t = Trainer(model, opt, nn.CrossEntropyLoss(), verbose=0)
    x, y = _problem(n=8)
    with pytest.raises(TypeError, match=r"pair \(inputs, targets\); the loader gave a list of length 3"):
        t.fit([[x, y, y]], epochs=1)
    with pytest.raises(KeyError, match="monitors 'val_loss', which this run does not record"):
        Trainer(model, opt, nn.CrossEntropyLoss(), callbacks=[EarlyStopping()], verbose=0).fit(
            _loader(x, y), epochs=1)


def test_progress_bar_on_a_terminal_shows_loss_accuracy_and_rate(monkeypatch):
    import io

    from deepbox.train import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress, "_REFRESH_S", 0.0)  # redraw on every batch
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    x, y = _problem(n=64)
    model = _model()
    Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), metrics=["accuracy"],
            verbose=1).fit(_loader(x, y), epochs=1)
    text = term.getvalue()
    assert "epoch 1/1" in text and "loss=" in text and "accuracy=" in text and "samples/s=" in text
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), verbose=0).fit(
        _loader(x, y), epochs=1)
    assert quiet.getvalue() == ""

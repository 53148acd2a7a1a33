"""Issue 14: the command line never gives a silently wrong result. A resumed run keeps its identity and its schedule,
class names are part of a run, labels are checked before anything is built from them, bad input exits 2 before any
state changes, and a failed run leaves no half-made folder."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from deepbox.cli.main import main

SMALL = ["--model", "mlp", "--limit-train", "256", "--limit-test", "64", "--batch-size", "64", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bad(capsys, *argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and match in err, err
    return err


def history(folder):
    return json.loads((folder / "history.json").read_text())["history"]


def _npz(path, classes=None, n_train=60, n_test=20, k=3, size=8, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n_train + n_test) if labels is None else np.asarray(labels)
    x = (rng.random((len(y), size, size)) * 60).astype(np.uint8)
    for c in range(k):
        x[y == c, 2 * c:2 * c + 2] += 150
    extra = {} if classes is None else {"classes": np.array(classes)}
    np.savez(path, x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:], **extra)
    return path


# ------------------------------------------------------------------------------ 1: resume past a finished schedule
def test_extending_a_finished_cosine_run_starts_a_new_segment(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    code, text, err = run(capsys, "train", "--resume", out, "--epochs", "4", "--quiet")
    assert code == 0, err
    assert "extending" in text and "epochs 3-4 are a new segment (cosine from lr 0.001 to 0)" in text
    h = history(out)
    # before: epochs 3-4 ran at lr 0.0 and the loss stood still
    assert h["lr"] == pytest.approx([1e-3, 5e-4, 1e-3, 5e-4])
    assert h["loss"][3] < h["loss"][2] < h["loss"][1]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["segments"] == [{"epochs": [1, 2], "lr": 1e-3, "scheduler": "cosine", "interval": "step"},
                               {"epochs": [3, 4], "lr": 1e-3, "scheduler": "cosine", "interval": "step"}]
    # a second extension with another rate, given as a flag: allowed for a finished run only
    code, text, err = run(capsys, "train", "--resume", out, "--epochs", "6", "--lr", "2e-4", "--quiet")
    assert code == 0, err
    assert history(out)["lr"][4:] == pytest.approx([2e-4, 1e-4])


def _schedule(folder):
    from deepbox.io import load

    return load(str(folder / "checkpoint.safetensors"))["scheduler"]


def test_the_cosine_schedule_steps_after_every_batch(tmp_path, capsys, monkeypatch):
    # 256 images in batches of 64: 4 steps an epoch; over 2 epochs the rate after step s is 1e-3 (1 + cos(pi s / 8)) / 2
    from deepbox.train.trainer import Trainer

    seen = []
    real = Trainer._train_epoch

    def record(self, loader, epoch, epochs, batch_cbs):
        logs = real(self, loader, epoch, epochs, batch_cbs)
        seen.append(self.optimizer.param_groups[0]["lr"])
        return logs

    monkeypatch.setattr(Trainer, "_train_epoch", record)
    out = tmp_path / "r"
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    assert seen == pytest.approx([1e-3 * (1 + np.cos(np.pi * s / 8)) / 2 for s in (4, 8)], abs=1e-12)
    sched = _schedule(out)
    assert (sched["T_max"], sched["last_epoch"]) == (8, 8)
    assert history(out)["lr"] == pytest.approx([1e-3, 5e-4])   # the rate each epoch started with


def test_a_run_made_with_the_per_epoch_schedule_resumes_with_it(tmp_path, capsys, monkeypatch):
    # runs made before the schedule stepped per batch (no "interval" in their segments) keep stepping per epoch
    import deepbox.cli.train as train_cmd
    from deepbox.cli import train_steps

    out = tmp_path / "r"
    legacy = train_steps._segment

    monkeypatch.setattr(train_cmd, "schedule_interval", lambda resume: "epoch")
    monkeypatch.setattr(train_steps, "_segment", lambda first, last, lr, scheduler, interval="step":
                        legacy(first, last, lr, scheduler, None))
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    assert (_schedule(out)["T_max"], _schedule(out)["last_epoch"]) == (2, 2)
    monkeypatch.undo()
    code, _, err = run(capsys, "train", "--resume", out, "--epochs", "4", "--quiet")
    assert code == 0, err
    assert (_schedule(out)["T_max"], _schedule(out)["last_epoch"]) == (2, 2)    # 2 new epochs, stepped per epoch
    assert history(out)["lr"] == pytest.approx([1e-3, 5e-4, 1e-3, 5e-4])
    assert json.loads((out / "config.json").read_text())["segments"] == [
        {"epochs": [1, 2], "lr": 1e-3, "scheduler": "cosine"}, {"epochs": [3, 4], "lr": 1e-3, "scheduler": "cosine"}]
    # an unfinished legacy run continues its per-epoch plan too
    out2 = tmp_path / "r2"
    monkeypatch.setattr(train_cmd, "schedule_interval", lambda resume: "epoch")
    monkeypatch.setattr(train_steps, "_segment", lambda first, last, lr, scheduler, interval="step":
                        legacy(first, last, lr, scheduler, None))
    from deepbox.train.trainer import Trainer

    real = Trainer._train_epoch

    def interrupted(self, loader, epoch, epochs, batch_cbs):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, loader, epoch, epochs, batch_cbs)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    assert run(capsys, "train", *SMALL, "--epochs", "3", "--out", out2)[0] == 130
    monkeypatch.undo()
    assert run(capsys, "train", "--resume", out2, "--quiet")[0] == 0
    assert history(out2)["lr"] == pytest.approx([1e-3, 7.5e-4, 2.5e-4])
    assert (_schedule(out2)["T_max"], _schedule(out2)["last_epoch"]) == (3, 3)


def test_an_unfinished_run_is_finished_before_it_is_extended(tmp_path, capsys, monkeypatch):
    from deepbox.train.trainer import Trainer

    out = tmp_path / "r"
    real = Trainer._train_epoch

    def interrupted(self, loader, epoch, epochs, batch_cbs):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, loader, epoch, epochs, batch_cbs)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    code, _, err = run(capsys, "train", *SMALL, "--epochs", "3", "--out", out)
    assert code == 130 and f"continue with: deepbox train --resume {out}" in err
    monkeypatch.setattr(Trainer, "_train_epoch", real)
    ckpt = (out / "checkpoint.safetensors").read_bytes()
    bad(capsys, "train", "--resume", out, "--epochs", "5", match="stopped after 1 of its 3 planned epochs")
    bad(capsys, "train", "--resume", out, "--lr", "0.01", match="lr may change only when a finished run is extended")
    assert (out / "checkpoint.safetensors").read_bytes() == ckpt
    code, _, err = run(capsys, "train", "--resume", out, "--quiet")
    assert code == 0, err
    assert history(out)["lr"] == pytest.approx([1e-3, 7.5e-4, 2.5e-4])  # the planned cosine, unbent


# ------------------------------------------------------------------------------ 2: a resumed run keeps its identity
def test_a_config_file_cannot_change_a_resumed_run(tmp_path, capsys):
    data = _npz(tmp_path / "a.npz")
    out = tmp_path / "r"
    assert main(["train", "--model", "mlp", "--data", str(data), "--epochs", "1", "--batch-size", "16",
                 "--out", str(out), "--quiet"]) == 0
    before = (out / "checkpoint.safetensors").read_bytes(), (out / "config.json").read_text()
    other = _npz(tmp_path / "b.npz", seed=1)
    cfg = tmp_path / "c.yaml"
    for text, name in ((f"data: {other}\n", "data"), ("seed: 5\n", "seed"), ("batch-size: 8\n", "batch-size"),
                       ("augment: true\n", "augment"), ("optimizer: sgd\n", "optimizer")):
        cfg.write_text(text + "epochs: 2\n")
        err = bad(capsys, "train", "--resume", out, "--config", cfg, match=f"{name} = ")
        assert f"from config file {cfg}" in err and "a resumed run keeps its configuration" in err
    bad(capsys, "train", "--resume", out, "--data", other, "--epochs", "2", match="from --data")
    assert ((out / "checkpoint.safetensors").read_bytes(), (out / "config.json").read_text()) == before
    # the same values, and what may change, go through from a file as from flags
    cfg.write_text(f"data: {data}\nbatch_size: 16\nepochs: 2\nworkers: 0\n")
    code, _, err = run(capsys, "train", "--resume", out, "--config", cfg, "--quiet")
    assert code == 0, err
    assert len(history(out)["loss"]) == 2


def test_a_resumed_run_refuses_data_that_changed_on_disk(tmp_path, capsys):
    data = _npz(tmp_path / "d.npz", classes=["ant", "bee", "cow"])
    out = tmp_path / "r"
    assert main(["train", "--model", "mlp", "--data", str(data), "--epochs", "1", "--batch-size", "16",
                 "--out", str(out), "--quiet"]) == 0
    _npz(data, classes=["ant", "bee", "cat"])  # same shapes and labels, other class names
    bad(capsys, "train", "--resume", out, "--epochs", "2", match="changed since it was trained")
    _npz(data, classes=["ant", "bee", "cow"], n_train=50)  # fewer images
    bad(capsys, "train", "--resume", out, "--epochs", "2", match="train size was 60 and is now 50")


# ------------------------------------------------------------------------------ 3: class names are part of the run
def _image_folder(root, split_classes: dict[str, list[str]], size: int = 8):
    rng = np.random.default_rng(0)
    for split, classes in split_classes.items():
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def test_class_folders_that_differ_between_splits(tmp_path, capsys):
    from deepbox.vision.datasets import load_dataset

    zoo = _image_folder(tmp_path / "zoo", {"train": ["cat", "dog"], "test": ["cat", "zebra"]})
    # before: zebras were numbered 1, the label of dogs
    bad(capsys, "train", "--model", "mlp", "--data", zoo, "--out", tmp_path / "r", match="zebra")
    assert not (tmp_path / "r").exists()
    # a test split that lacks a class keeps the training split's numbering
    pets = _image_folder(tmp_path / "pets", {"train": ["cat", "dog"], "test": ["dog"]})
    test = load_dataset(str(pets), train=False)
    assert test.classes == ["cat", "dog"] and set(test.targets) == {1}


def test_eval_refuses_data_with_other_class_names(tmp_path, capsys):
    a = _npz(tmp_path / "a.npz", classes=["ant", "bee", "cow"])
    b = _npz(tmp_path / "b.npz", classes=["ant", "bee", "cat"], seed=1)
    out = tmp_path / "r"
    assert main(["train", "--model", "mlp", "--data", str(a), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    err = bad(capsys, "eval", out, "--data", b, match="has the classes ant, bee, cat")
    assert "trained on ant, bee, cow" in err
    code, _, err = run(capsys, "eval", out, "--data", a)
    assert code == 0, err


# ------------------------------------------------------------------------------ 5: labels checked before allocating
def test_a_single_huge_label_is_refused_before_anything_is_allocated(tmp_path, capsys):
    import resource

    labels = np.zeros(80, dtype=np.int64)
    labels[5] = 10**9
    data = _npz(tmp_path / "huge.npz", labels=labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bad(capsys, "train", "--model", "mlp", "--data", data, "--out", tmp_path / "r",
        match="label 1000000000 would mean 1,000,000,001 classes")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # KiB: no billion class names
    from deepbox.vision.datasets import DatasetFormatError, NpzImageDataset

    with pytest.raises(DatasetFormatError, match="huge.npz: label 1000000000"):
        NpzImageDataset(data, train=True)
    named = _npz(tmp_path / "named.npz", classes=["a", "b"], labels=[0, 1, 2] * 20 + [0] * 20)
    with pytest.raises(DatasetFormatError, match="label 2 but only 2 class names"):
        NpzImageDataset(named, train=True)


# ------------------------------------------------------------------------------ 8: exact resume with workers
def test_an_interrupted_run_with_workers_and_augmentation_resumes_exactly(tmp_path, capsys, monkeypatch):
    args = ["--model", "mlp", "--limit-train", "128", "--limit-test", "32", "--batch-size", "32", "--quiet",
            "--epochs", "3", "--augment", "--workers", "2"]
    assert main(["train", *args, "--out", str(tmp_path / "full")]) == 0
    from deepbox.train.trainer import Trainer

    real = Trainer._train_epoch

    def interrupted(self, loader, epoch, epochs, batch_cbs):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, loader, epoch, epochs, batch_cbs)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    assert run(capsys, "train", *args, "--out", tmp_path / "part")[0] == 130
    monkeypatch.setattr(Trainer, "_train_epoch", real)
    code, _, err = run(capsys, "train", "--resume", tmp_path / "part", "--quiet")
    assert code == 0, err
    assert history(tmp_path / "part") == history(tmp_path / "full")


# ------------------------------------------------------------------------------ 9: the smaller ones
def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, capsys, monkeypatch):
    from deepbox.train.trainer import Trainer

    def broken(self, *a, **k):
        raise RuntimeError("the machine caught fire")

    monkeypatch.setattr(Trainer, "_train_epoch", broken)
    code, _, err = run(capsys, "train", *SMALL, "--out", tmp_path / "r")
    assert code == 1 and "caught fire" in err
    assert not (tmp_path / "r").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert run(capsys, "train", *SMALL, "--out", tmp_path / "mine")[0] == 1
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]


def test_bad_inputs_exit_2_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("x")
    bad(capsys, "train", *SMALL, "--out", tmp_path / "afile", match="is a file")
    empty = tmp_path / "empty.npz"
    x = np.zeros((10, 8, 8), np.uint8)
    np.savez(empty, x_train=x, y_train=np.zeros(10, np.int64), x_test=x[:0], y_test=np.zeros(0, np.int64))
    bad(capsys, "train", "--model", "mlp", "--data", empty, "--out", tmp_path / "e", match="the test split holds no")
    assert not (tmp_path / "e").exists()
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be.\n" * 20)
    bad(capsys, "train", "--model", "char_lstm", "--data", short, "--out", tmp_path / "lm", match="too few")
    assert not (tmp_path / "lm").exists()
    for flag, value, match in (("--lr", "inf", "lr = inf"), ("--lr", "1e6", "lr = 1000000.0"),
                               ("--weight-decay", "inf", "weight-decay = inf"), ("--momentum", "1.5", "momentum = 1.5"),
                               ("--lr", "nan", "lr = nan")):
        bad(capsys, "train", flag, value, "--out", tmp_path / "x", match=match)
    assert not (tmp_path / "x").exists()


def test_yaml_floats_as_people_write_them(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 1e-3\nweight-decay: 5E-4\nepochs: 1\n")
    code, _, err = run(capsys, "train", *SMALL, "--config", cfg, "--out", tmp_path / "r")
    assert code == 0, err
    train = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert (train["lr"], train["weight_decay"]) == (1e-3, 5e-4)


def test_eval_limit_test_and_oversized_images(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    bad(capsys, "eval", out, "--limit-test", "0", match="--limit-test 0: expected a positive integer")
    bad(capsys, "eval", out, "--limit-test", "-5", match="--limit-test -5")
    Image.new("L", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is then more than twice the limit: a "bomb"
    bad(capsys, "predict", out, tmp_path / "big.png", match="big.png' cannot be read")
    folder = _image_folder(tmp_path / "bombs", {"train": ["a", "b"], "test": ["a", "b"]}, size=16)
    bad(capsys, "train", "--model", "mlp", "--data", folder, "--out", tmp_path / "b", match="cannot read image file")


def test_history_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    modes = {n: os.stat(tmp_path / "r" / n).st_mode & 0o777 for n in os.listdir(tmp_path / "r")}
    assert set(modes.values()) == {0o644}, modes  # history files were 0600


# ------------------------------------------------------------------------- issue 21: the command on a fresh install
def test_the_shakespeare_corpus_ships_inside_the_package(monkeypatch):
    import hashlib

    from deepbox.models.sequence import text

    raw = text.read_text(text.EMBEDDED_SHAKESPEARE)
    assert hashlib.sha256(raw.encode("utf-8")).hexdigest() == \
        "ada4b977d7022cfc6b825c706d721fb8b307a8abb291440a05611b3908c5e623"  # deepbox/models/sequence/_data/README.md
    assert len(raw) == 4_850_382 and len(set(raw)) == 83
    assert os.path.getsize(text.EMBEDDED_SHAKESPEARE) < 2_000_000
    # outside a checkout nothing else is found: the embedded copy is used
    monkeypatch.delenv("DEEPBOX_DATA", raising=False)
    monkeypatch.setattr(text, "__file__", "/nonexistent/a/b/c/text.py")
    assert text.find_shakespeare() == text.EMBEDDED_SHAKESPEARE
    vocab, train, val = text.load_char_corpus(max_chars=5000)
    assert len(vocab) == 83 and len(train) + len(val) == 5000
    with pytest.raises(FileNotFoundError, match="no such text file"):
        text.find_shakespeare("/nonexistent/poems.txt")  # a path that is given is never silently replaced


def test_the_base_install_holds_what_the_command_needs():
    import tomllib

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    base = {d.split(">")[0].split("=")[0].strip().lower() for d in project["project"]["dependencies"]}
    assert {"numpy", "safetensors", "tqdm", "matplotlib", "pillow", "pyyaml"} <= base
    assert project["project"]["optional-dependencies"]["cli"] == []  # the README's ".[cli,fast]" still installs
    assert "models/sequence/_data/*" in project["tool"]["setuptools"]["package-data"]["deepbox"]


def test_train_stops_before_training_without_matplotlib(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    bad(capsys, "train", *SMALL, "--out", tmp_path / "r", match="pip install matplotlib")
    assert not (tmp_path / "r").exists()

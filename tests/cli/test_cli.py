"""The deepbox command end to end on small data: train, eval, predict, resume, configs, listings, and
every kind of bad input (exit status 2, one paragraph naming the problem, no traceback)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import deepbox
from deepbox.cli.main import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--model", "mlp", "--limit-train", "384", "--limit-test", "96", "--batch-size", "64", "--quiet"]
PNGS = ("curves.png", "confusion_matrix.png", "predictions.png")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small run shared by the tests that read a run folder."""
    folder = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(folder)]) == 0
    return folder


def test_train_writes_a_complete_run_folder(trained):
    for name in ("checkpoint.safetensors", "config.json", "history.csv", "history.json", "results.json", *PNGS):
        assert (trained / name).is_file(), name
    for name in PNGS:
        with Image.open(trained / name) as im:
            im.verify()
        with Image.open(trained / name) as im:
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
    hist = json.loads((trained / "history.json").read_text())
    assert hist["epochs"] == 2 and len(hist["history"]["val_accuracy"]) == 2
    assert len((trained / "history.csv").read_text().strip().splitlines()) == 3
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["model"] == {"name": "mlp", "kwargs": {"in_channels": 1, "num_classes": 10, "image_size": 28}}
    assert cfg["data"]["classes"][0] == "T-shirt/top" and cfg["data"]["input_shape"] == [1, 28, 28]
    # the checkpoint alone rebuilds the model
    state = deepbox.load(trained / "checkpoint.safetensors")
    model = deepbox.models.get_model(state["extra"]["model"]["name"], **state["extra"]["model"]["kwargs"])
    model.load_state_dict(state["model"])
    res = json.loads((trained / "results.json").read_text())
    assert res["test_size"] == 96 and 0.4 < res["test_accuracy"] <= 1.0  # 10 classes: chance is 0.1


def test_train_prints_the_test_accuracy(tmp_path, capsys):
    code, out, err = run(capsys, "train", *SMALL, "--epochs", "1", "--out", tmp_path / "r")
    assert code == 0, err
    acc = json.loads((tmp_path / "r" / "results.json").read_text())["test_accuracy"]
    assert f"test accuracy: {acc:.2%}" in out
    assert "mlp (235,146 parameters)" in out


def test_eval_reports_the_same_accuracy(trained, capsys):
    code, out, err = run(capsys, "eval", trained, "--limit-test", "96")
    assert code == 0, err
    acc = json.loads((trained / "results.json").read_text())["test_accuracy"]
    assert f"accuracy {acc:.2%}" in out and "macro F1" in out


def test_predict_images_of_any_size(trained, tmp_path, capsys):
    from deepbox.vision.datasets import load_dataset

    test = load_dataset("fashion-mnist-small", train=False)
    img = test.data._data[:2]
    Image.fromarray(img[0]).save(tmp_path / "a.png")
    Image.fromarray(img[1]).convert("RGB").resize((56, 56)).save(tmp_path / "b.jpg")  # colour, twice the size
    code, out, err = run(capsys, "predict", trained, tmp_path / "a.png", tmp_path / "b.jpg", "--top-k", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("a.png") and lines[3].endswith("b.jpg")
    probs = [float(line.split()[-1].rstrip("%")) for line in lines if line.startswith("  ")]
    assert len(probs) == 4 and probs[0] >= probs[1] and probs[2] >= probs[3]
    # the image file goes through the same normalisation as the test array in training
    state = deepbox.load(trained / "checkpoint.safetensors")
    cfg = state["extra"]
    model = deepbox.models.get_model("mlp", **cfg["model"]["kwargs"])
    model.load_state_dict(state["model"])
    x = (img[:1].astype(np.float32) / 255 - cfg["data"]["mean"][0]) / cfg["data"]["std"][0]
    with deepbox.no_grad():
        logits = model(deepbox.from_numpy(x[:, None]))._data[0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = int(p.argmax())
    assert lines[1].split(None, 1)[1].rsplit(None, 1)[0].strip() == cfg["data"]["classes"][top]
    assert probs[0] == pytest.approx(100 * p[top], abs=0.006)


def test_an_interrupted_run_resumes_exactly(tmp_path, capsys, monkeypatch):
    args = [*SMALL, "--limit-train", "192", "--epochs", "3", "--augment"]  # cosine schedule, random shifts/flips
    assert main(["train", *args, "--out", str(tmp_path / "full")]) == 0

    from deepbox.train.trainer import Trainer

    real = Trainer._train_epoch

    def interrupted(self, loader, epoch, epochs, batch_cbs):
        if epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C during the second epoch
        return real(self, loader, epoch, epochs, batch_cbs)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    code, out, err = run(capsys, "train", *args, "--out", tmp_path / "part")
    assert code == 130 and "interrupted" in err
    monkeypatch.setattr(Trainer, "_train_epoch", real)
    code, out, err = run(capsys, "train", "--resume", tmp_path / "part", "--quiet")
    assert code == 0, err
    assert "resuming" in out and "after epoch 1" in out
    full = json.loads((tmp_path / "full" / "history.json").read_text())["history"]
    resumed = json.loads((tmp_path / "part" / "history.json").read_text())["history"]
    assert len(full["loss"]) == 3 and resumed == full
    # more epochs than planned: the run goes on, the schedule stretches to the new end
    code, out, err = run(capsys, "train", "--resume", tmp_path / "part", "--epochs", "4", "--quiet")
    assert code == 0, err
    assert len(json.loads((tmp_path / "part" / "history.json").read_text())["history"]["loss"]) == 4


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: mlp\nepochs: 5\nbatch-size: 32\nlimit_train: 128\nlimit-test: 32\noptimizer: SGD\n"
                   "lr: 0.05\n")
    code, out, err = run(capsys, "train", "--config", cfg, "--epochs", "1", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    train = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert (train["epochs"], train["batch_size"], train["optimizer"], train["lr"]) == (1, 32, "sgd", 0.05)
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"model": "mlp", "epochs": 1, "limit_train": 64, "limit_test": 16}))
    code, out, err = run(capsys, "train", "--config", js, "--out", tmp_path / "j", "--quiet")
    assert code == 0, err


def test_data_from_an_npz_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=150)
    x = (rng.random((150, 12, 12)) * 60).astype(np.uint8)
    for k in range(3):  # each class lights its own band of rows
        x[y == k, 4 * k:4 * k + 4] += 150
    np.savez(tmp_path / "bands.npz", x_train=x[:120], y_train=y[:120], x_test=x[120:], y_test=y[120:])
    code, out, err = run(capsys, "train", "--model", "mlp", "--data", tmp_path / "bands.npz", "--epochs", "3",
                         "--batch-size", "16", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["test_accuracy"] > 0.9
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"]["input_shape"] == [1, 12, 12]


def test_models_datasets_info(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("lenet5 "))
    assert "61,706" in row and "image-classification" in row
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("fashion-mnist-small "))
    assert "yes" in row and "20,000 / 2,000" in row and "fashion_mnist_small.npz" in row


def test_python_dash_m_deepbox_info():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "deepbox", "info"], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"deepbox     {deepbox.__version__}" in proc.stdout
    assert f"numpy       {np.__version__}" in proc.stdout and "threads" in proc.stdout
    assert "kernels     compiled (numba)" in proc.stdout      # numba is in the test extra
    assert "allocator   freed arrays kept for reuse" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "deepbox", "info"], capture_output=True, text=True, cwd=REPO,
                          env=dict(env, DEEPBOX_NUMBA="0", DEEPBOX_MALLOC="0"), timeout=120)
    assert "kernels     NumPy only (DEEPBOX_NUMBA=0)" in proc.stdout
    assert "allocator   the C library's default" in proc.stdout


# ------------------------------------------------------------------------------------------ bad input
def _bad(capsys, *argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert match in err, err
    assert len(err.strip().splitlines()) == 1  # one paragraph
    return err


def test_unknown_model_and_dataset(tmp_path, capsys):
    _bad(capsys, "train", "--model", "resnet9000", "--out", tmp_path / "a", match="unknown model 'resnet9000'")
    _bad(capsys, "train", "--data", "imagenet-22k", "--out", tmp_path / "b", match="unknown dataset 'imagenet-22k'")
    _bad(capsys, "train", "--model", "unet", "--out", tmp_path / "c", match="'unet' is a segmentation model")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_language_models_name_a_missing_text(tmp_path, capsys):
    _bad(capsys, "train", "--model", "char_lstm", "--data", tmp_path / "poems.txt", "--out", tmp_path / "lm",
         match=f"text '{tmp_path / 'poems.txt'}' cannot be loaded")
    assert not (tmp_path / "lm").exists()


def test_bad_values_from_flags_and_files(tmp_path, capsys):
    _bad(capsys, "train", "--lr", "0", match="lr = 0.0 (from --lr) is not usable: expected a number > 0")
    _bad(capsys, "train", "--optimizer", "adamax", match="expected one of adam, adamw, sgd, rmsprop, adagrad")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: -3\n")
    _bad(capsys, "train", "--config", cfg, match=f"epochs = -3 (from config file {cfg})")
    cfg.write_text("epochs: 2\nlearning_rate: 0.1\n")
    _bad(capsys, "train", "--config", cfg, match="unknown option 'learning_rate'")
    cfg.write_text("epochs: [2\n")
    _bad(capsys, "train", "--config", cfg, match="not valid YAML")
    _bad(capsys, "train", "--config", tmp_path / "missing.json", match="no such file")
    (tmp_path / "c.toml").write_text("x = 1\n")
    _bad(capsys, "train", "--config", tmp_path / "c.toml", match="expected .yaml, .yml or .json")


def test_run_folders_without_a_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _bad(capsys, "eval", tmp_path / "empty", match="holds no checkpoint (checkpoint.safetensors)")
    _bad(capsys, "predict", tmp_path / "nowhere", "x.png", match="does not exist")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "checkpoint.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{trunc")
    _bad(capsys, "eval", tmp_path / "broken", match="checkpoint.safetensors cannot be read")
    _bad(capsys, "train", "--resume", tmp_path / "empty", match="holds no checkpoint")


def test_unreadable_images(trained, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("this is not a picture")
    _bad(capsys, "predict", trained, tmp_path / "notes.png", match=f"image '{tmp_path / 'notes.png'}' cannot be read")
    _bad(capsys, "predict", trained, tmp_path / "gone.png", match="no such file")
    _bad(capsys, "predict", trained, tmp_path / "notes.png", "--top-k", "0", match="--top-k 0")


def test_corrupt_dataset_files(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 definitely not a zip archive")
    err = _bad(capsys, "train", "--data", tmp_path / "bad.npz", "--out", tmp_path / "r",
               match=f"dataset '{tmp_path / 'bad.npz'}' cannot be loaded")
    assert "bad.npz" in err
    from deepbox.vision.idx import write_idx

    idx = tmp_path / "idx"
    idx.mkdir()
    rng = np.random.default_rng(0)
    write_idx(idx / "train-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28), dtype=np.uint8))
    write_idx(idx / "train-labels-idx1-ubyte", rng.integers(0, 10, 20).astype(np.uint8))
    write_idx(idx / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28), dtype=np.uint8))
    write_idx(idx / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 9).astype(np.uint8))  # one label short
    _bad(capsys, "train", "--data", idx, "--out", tmp_path / "r", match="cannot be loaded")
    raw = (idx / "train-images-idx3-ubyte").read_bytes()
    (idx / "train-images-idx3-ubyte").write_bytes(raw[: len(raw) // 2])  # truncated
    _bad(capsys, "train", "--data", idx, "--out", tmp_path / "r", match="train-images-idx3-ubyte")
    assert not (tmp_path / "r").exists()


def test_a_failed_run_leaves_the_earlier_checkpoint_alone(trained, capsys):
    ckpt = trained / "checkpoint.safetensors"
    before = ckpt.read_bytes()
    _bad(capsys, "train", *SMALL, "--out", trained, match="already holds a run")
    _bad(capsys, "train", "--resume", trained, "--epochs", "2", match="has already trained 2 epochs")
    _bad(capsys, "train", "--resume", trained, "--model", "lenet5", match="a resumed run keeps its configuration")
    _bad(capsys, "eval", trained, "--data", "cifar10", match="cannot be loaded")
    assert ckpt.read_bytes() == before


def test_errors_go_through_debug_as_tracebacks(tmp_path):
    from deepbox.cli.main import CLIError

    with pytest.raises(CLIError, match="unknown model"):
        main(["train", "--model", "nope", "--debug"])


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "deepbox", "eval", str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 2
    assert "holds no checkpoint" in proc.stderr and "Traceback" not in proc.stderr

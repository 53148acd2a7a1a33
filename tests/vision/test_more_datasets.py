"""CIFAR-100, SVHN, KMNIST and EMNIST read from small files written here in each dataset's published format,
with torchvision's constructor signatures, label conventions and errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.io import savemat

from deepbox.vision import datasets
from deepbox.vision.datasets import DatasetFormatError, DatasetNotFoundError
from deepbox.vision.idx import write_idx

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("DEEPBOX_DATA", raising=False)


def test_cifar100_binary_records(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    imgs = rng.integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    coarse = np.arange(7, dtype=np.uint8) % 20
    fine = (np.arange(7, dtype=np.uint8) * 13) % 100
    rec = np.concatenate([coarse[:, None], fine[:, None], imgs.reshape(7, -1)], axis=1)
    rec.tofile(folder / "train.bin")
    rec[:3].tofile(folder / "test.bin")
    ds = datasets.CIFAR100(str(tmp_path), train=True)
    assert len(ds) == 7 and ds.targets == fine.tolist() and ds.coarse_targets == coarse.tolist()
    np.testing.assert_array_equal(ds.data[2], imgs[2].transpose(1, 2, 0))
    assert len(ds.classes) == 100 and ds.classes[0] == "apple" and ds.classes[99] == "worm"
    img, label = ds[1]
    assert img.size == (32, 32) and label == fine[1]
    assert len(datasets.CIFAR100(str(tmp_path), train=False)) == 3
    (folder / "test.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetFormatError, match="CIFAR-100 records"):
        datasets.CIFAR100(str(tmp_path), train=False)


@pytest.mark.parametrize("form", ["npz_mat_layout", "npz_nhwc", "mat"])
def test_svhn_forms_and_label_ten_is_zero(tmp_path, form):
    X = rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8)  # the .mat layout (H, W, C, N)
    y = np.array([[10], [1], [2], [10], [9], [5]], dtype=np.uint8)
    if form == "npz_mat_layout":
        np.savez(tmp_path / "svhn_test.npz", X=X, y=y)
    elif form == "npz_nhwc":
        np.savez(tmp_path / "svhn_test.npz", X=X.transpose(3, 0, 1, 2), y=y.ravel())
    else:
        savemat(tmp_path / "test_32x32.mat", {"X": X, "y": y})
    ds = datasets.SVHN(str(tmp_path), split="test")
    assert len(ds) == 6 and ds.labels.tolist() == [0, 1, 2, 0, 9, 5]
    np.testing.assert_array_equal(ds.data.numpy()[3], X[..., 3].transpose(2, 0, 1))
    img, label = ds[4]
    assert img.size == (32, 32) and label == 9
    with pytest.raises(ValueError, match="split"):
        datasets.SVHN(str(tmp_path), split="validation")
    with pytest.raises(DatasetNotFoundError, match="svhn_train.npz"):
        datasets.SVHN(str(tmp_path), split="train")


def test_kmnist_reads_idx_files(tmp_path):
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 8), ("t10k", 4)):
        write_idx(str(raw / f"{prefix}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(str(raw / f"{prefix}-labels-idx1-ubyte.gz"), (np.arange(n) % 10).astype(np.uint8))
    ds = datasets.KMNIST(str(tmp_path), train=False)
    assert len(ds) == 4 and ds.classes[1] == "ki"


@pytest.mark.parametrize("split,n_classes", [("balanced", 47), ("byclass", 62), ("letters", 27), ("digits", 10)])
def test_emnist_splits(tmp_path, split, n_classes):
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    for part, n in (("train", 9), ("test", 3)):
        write_idx(str(raw / f"emnist-{split}-{part}-images-idx3-ubyte.gz"),
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(str(raw / f"emnist-{split}-{part}-labels-idx1-ubyte.gz"),
                  (np.arange(n) % n_classes).astype(np.uint8))
    ds = datasets.EMNIST(str(tmp_path), split=split, train=True)
    assert len(ds) == 9 and len(ds.classes) == n_classes
    assert len(datasets.EMNIST(str(tmp_path), split=split, train=False)) == 3
    with pytest.raises(DatasetNotFoundError, match="emnist-mnist-train-images-idx3-ubyte"):
        datasets.EMNIST(str(tmp_path), split="mnist")
    with pytest.raises(ValueError, match="split"):
        datasets.EMNIST(str(tmp_path), split="nope")
    assert os.path.isdir(raw)

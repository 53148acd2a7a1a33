"""The real Fashion-MNIST files (Debian's dataset-fashion-mnist, installed in CI)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import deepbox
from deepbox.vision import datasets, transforms

SYSTEM = "/usr/share/datasets/fashion-mnist"
pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(SYSTEM, "train-labels-idx1-ubyte.gz")),
                                reason="dataset-fashion-mnist is not installed")


@pytest.fixture(scope="module")
def train():
    return datasets.FashionMNIST(root=None, train=True)


@pytest.fixture(scope="module")
def test():
    return datasets.FashionMNIST(root=None, train=False)


def test_counts_shapes_and_histogram(train, test, monkeypatch):
    assert len(train) == 60000 and len(test) == 10000
    assert train.source == SYSTEM and test.source == SYSTEM
    for ds, per_class in ((train, 6000), (test, 1000)):
        assert ds.data.shape == (len(ds), 28, 28) and ds.data.dtype == deepbox.uint8
        assert ds.targets.shape == (len(ds),) and ds.targets.dtype == deepbox.int64
        np.testing.assert_array_equal(np.bincount(ds.targets._data, minlength=10), [per_class] * 10)
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    # a real image: not blank, full 8-bit range over the set
    assert train.data._data.max() == 255 and train.data._data.min() == 0
    assert 60 < train.data._data[:1000].mean() < 90


def test_getitem_like_torchvision(test):
    from PIL import Image

    img, label = test[0]
    assert isinstance(img, Image.Image) and img.size == (28, 28) and img.mode == "L"
    assert isinstance(label, int) and label == int(test.targets._data[0])
    np.testing.assert_array_equal(np.asarray(img), test.data._data[0])
    ds = datasets.FashionMNIST(train=False, transform=transforms.ToTensor(), target_transform=lambda y: y + 100)
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == deepbox.float32 and y == int(test.targets._data[3]) + 100
    np.testing.assert_allclose(x._data[0], test.data._data[3] / np.float32(255), rtol=1e-6)


def test_search_order_prefers_root_and_env(tmp_path, monkeypatch):
    from deepbox.vision.idx import write_idx

    # torchvision's layout under root wins over the system folder
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", np.full((3, 28, 28), 7, np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    ds = datasets.FashionMNIST(root=str(tmp_path), train=False)
    assert len(ds) == 3 and ds.source == str(raw)
    # $DEEPBOX_DATA comes before the system folder
    env = tmp_path / "env" / "fashion-mnist"
    env.mkdir(parents=True)
    write_idx(env / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(env / "t10k-labels-idx1-ubyte.gz", np.array([4, 5], np.uint8))
    monkeypatch.setenv("DEEPBOX_DATA", str(tmp_path / "env"))
    ds = datasets.FashionMNIST(root=str(tmp_path / "empty"), train=False)
    assert len(ds) == 2 and ds.source == str(env)
    # the training split is not in either folder: the system folder supplies it
    assert datasets.FashionMNIST(root=str(tmp_path), train=True).source == SYSTEM


def test_load_dataset_uses_the_real_files(monkeypatch):
    monkeypatch.delenv("DEEPBOX_DATA", raising=False)
    ds = datasets.load_dataset("fashion-mnist", train=False)
    assert isinstance(ds, datasets.FashionMNIST) and len(ds) == 10000 and ds.source == SYSTEM
    info = {d["name"]: d for d in datasets.available_datasets()}
    assert info["fashion-mnist"]["where"] == SYSTEM
    assert (info["fashion-mnist"]["train_size"], info["fashion-mnist"]["test_size"]) == (60000, 10000)


def test_embedded_subset_is_drawn_from_the_real_files(train, test):
    for split, full in (("train", train), ("test", test)):
        emb = datasets.EmbeddedFashionMNIST(train=split == "train")
        src = emb.source_index
        np.testing.assert_array_equal(emb.data._data, full.data._data[src])
        np.testing.assert_array_equal(emb.targets._data, full.targets._data[src])

"""The embedded Fashion-MNIST subset shipped inside the package."""
from __future__ import annotations

import hashlib
import os

import numpy as np

import deepbox
from deepbox.vision import datasets

DATA_DIR = os.path.join(os.path.dirname(datasets.__file__), "..", "_data")


def test_shapes_dtypes_and_class_balance():
    for train, n in ((True, 20000), (False, 2000)):
        ds = datasets.EmbeddedFashionMNIST(train=train)
        assert len(ds) == n
        assert ds.data.shape == (n, 28, 28) and ds.data.dtype == deepbox.uint8
        assert ds.targets.shape == (n,) and ds.targets.dtype == deepbox.int64
        np.testing.assert_array_equal(np.bincount(ds.targets._data, minlength=10), [n // 10] * 10)
        assert len(set(ds.source_index.tolist())) == n  # no image twice
        assert ds.classes == datasets.FashionMNIST.classes
        # shuffled: the first 100 labels are not one class
        assert len(set(ds.targets._data[:100].tolist())) == 10
        img, label = ds[0]
        np.testing.assert_array_equal(np.asarray(img), ds.data._data[0])
        assert label == int(ds.targets._data[0])


def test_real_pixels():
    ds = datasets.EmbeddedFashionMNIST(train=False)
    x = ds.data._data
    assert x.min() == 0 and x.max() == 255 and 60 < x.mean() < 90
    # trousers (class 1) are tall and narrow: more ink in the middle columns than at the sides
    trousers = x[ds.targets._data == 1].astype(np.float64).mean(0)
    assert trousers[:, 11:17].mean() > 1.5 * trousers[:, :5].mean()


def test_package_file_is_small_and_documented():
    npz = os.path.join(DATA_DIR, "fashion_mnist_small.npz")
    assert os.path.getsize(npz) < 10_000_000
    readme = open(os.path.join(DATA_DIR, "README.md")).read()
    for word in ("Zalando", "MIT", "dataset-fashion-mnist", "make_embedded.py", "20,000", "10,000", "2,000"):
        assert word in readme
    assert os.path.isfile(os.path.join(DATA_DIR, "make_embedded.py"))


def test_load_dataset_names(monkeypatch, tmp_path):
    ds = datasets.load_dataset("fashion-mnist-small", train=False)
    assert isinstance(ds, datasets.EmbeddedFashionMNIST) and len(ds) == 2000
    # without the real files, "fashion-mnist" falls back to the subset and says so
    monkeypatch.setattr(datasets.FashionMNIST, "system_dirs", ())
    monkeypatch.delenv("DEEPBOX_DATA", raising=False)
    ds = datasets.load_dataset("fashion-mnist", train=True, root=str(tmp_path))
    assert isinstance(ds, datasets.EmbeddedFashionMNIST) and len(ds) == 20000
    assert "embedded" in ds.source and "not found" in ds.source and "20,000 train" in ds.source
    info = {d["name"]: d for d in datasets.available_datasets()}
    assert info["fashion-mnist"]["available"] and "embedded" in info["fashion-mnist"]["where"]
    assert (info["fashion-mnist-small"]["train_size"], info["fashion-mnist-small"]["test_size"]) == (20000, 2000)


# SHA-256 of the pixels and labels of the 10,000 + 2,000 subset that deepbox shipped before (archive dc134ddf...)
EARLIER = {"train_images": "509b3eb34817a4666f80e3509371becf05b97454c1970478143ab10db967f42b",
           "train_labels": "a0c4b365b00ba38fc2f1ac50853abe684150ae4522bbbff073f10b7f362cad8b",
           "test_images": "54cfbcfe4e95d4d9ab29506732bd19dda9d7d13c5246fa7b35e5d1eb6ae71bc2",
           "test_labels": "4ca5a39bcf0920b35045e512f654fe0e2861f6d96330000b1ceec75600f70684"}


def test_first_10000_training_images_are_the_earlier_subset():
    # runs made on the earlier subset repeat with --limit-train 10000: its images, in its order, then 1,000 new
    # images per class; the test images are unchanged
    def digest(a):
        return hashlib.sha256(np.ascontiguousarray(a).astype(np.uint8).tobytes()).hexdigest()

    train, test = datasets.EmbeddedFashionMNIST(train=True), datasets.EmbeddedFashionMNIST(train=False)
    assert digest(train.data._data[:10000]) == EARLIER["train_images"]
    assert digest(train.targets._data[:10000]) == EARLIER["train_labels"]
    assert digest(test.data._data) == EARLIER["test_images"]
    assert digest(test.targets._data) == EARLIER["test_labels"]
    np.testing.assert_array_equal(np.bincount(train.targets._data[10000:], minlength=10), [1000] * 10)
    assert not set(train.source_index[10000:].tolist()) & set(train.source_index[:10000].tolist())

"""The embedded Fashion-MNIST subset shipped inside the package."""
from __future__ import annotations

import os

import numpy as np

import deepbox
from deepbox.vision import datasets

DATA_DIR = os.path.join(os.path.dirname(datasets.__file__), "..", "_data")


def test_shapes_dtypes_and_class_balance():
    for train, n in ((True, 10000), (False, 2000)):
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
    assert os.path.getsize(npz) < 6_000_000
    readme = open(os.path.join(DATA_DIR, "README.md")).read()
    for word in ("Zalando", "MIT", "dataset-fashion-mnist", "make_embedded.py", "10,000", "2,000"):
        assert word in readme
    assert os.path.isfile(os.path.join(DATA_DIR, "make_embedded.py"))


def test_load_dataset_names(monkeypatch, tmp_path):
    ds = datasets.load_dataset("fashion-mnist-small", train=False)
    assert isinstance(ds, datasets.EmbeddedFashionMNIST) and len(ds) == 2000
    # without the real files, "fashion-mnist" falls back to the subset and says so
    monkeypatch.setattr(datasets.FashionMNIST, "system_dirs", ())
    monkeypatch.delenv("DEEPBOX_DATA", raising=False)
    ds = datasets.load_dataset("fashion-mnist", train=True, root=str(tmp_path))
    assert isinstance(ds, datasets.EmbeddedFashionMNIST) and len(ds) == 10000
    assert "embedded" in ds.source and "not found" in ds.source
    info = {d["name"]: d for d in datasets.available_datasets()}
    assert info["fashion-mnist"]["available"] and "embedded" in info["fashion-mnist"]["where"]
    assert info["fashion-mnist-small"]["train_size"] == 10000

"""MNIST-format, CIFAR-10, ImageFolder and .npz datasets on small files made here, and their bad inputs."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import deepbox
from deepbox.utils.data import DataLoader, Subset
from deepbox.vision import datasets, transforms
from deepbox.vision.datasets import DatasetFormatError, DatasetNotFoundError
from deepbox.vision.idx import write_idx


def make_mnist(folder, n_train=12, n_test=5, gz=True):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"),
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"), (np.arange(n) % 10).astype(np.uint8))


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("DEEPBOX_DATA", raising=False)


# --------------------------------------------------------------------------- MNIST format


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_root(tmp_path, gz):
    make_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    ds = datasets.MNIST(str(tmp_path), train=True)
    assert len(ds) == 12 and ds.data.shape == (12, 28, 28) and ds.targets.tolist() == [i % 10 for i in range(12)]
    img, y = ds[11]
    assert isinstance(img, Image.Image) and y == 1
    test = datasets.MNIST(str(tmp_path), train=False, transform=transforms.ToTensor())
    x, y = test[4]
    assert len(test) == 5 and x.shape == (1, 28, 28) and y == 4


def test_missing_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.MNIST(str(tmp_path), train=True)
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path) in msg and "DEEPBOX_DATA" in msg
    assert os.path.join(str(tmp_path), "MNIST", "raw") in msg


def test_download_offline_fails_with_instructions(tmp_path, monkeypatch):
    # a closed local port: refused at once, as on a machine without a network
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.MNIST(str(tmp_path), train=True, download=True)
    msg = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg and "127.0.0.1:9" in msg
    assert os.path.join(str(tmp_path), "MNIST", "raw") in msg
    assert not [f for f in os.listdir(tmp_path / "MNIST" / "raw")]  # nothing half-written left behind


def test_truncated_images_file(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder, gz=False)
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte.*truncated.*9408 bytes"):
        datasets.MNIST(str(folder), train=True)


def test_corrupt_gzip_labels(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder, gz=True)
    labels = folder / "train-labels-idx1-ubyte.gz"
    data = bytearray(labels.read_bytes())
    data[-8:-4] = bytes(4 - i for i in range(4))  # a wrong CRC-32
    labels.write_bytes(bytes(data))
    with pytest.raises(DatasetFormatError, match="train-labels-idx1-ubyte.gz"):
        datasets.MNIST(str(folder), train=True)


def test_label_count_mismatch(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DatasetFormatError, match=r"has 11 labels but .*train-images-idx3-ubyte.gz has 12 images"):
        datasets.MNIST(str(folder), train=True)


def test_wrong_array_kinds(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((12, 784), np.uint8))
    with pytest.raises(DatasetFormatError, match="expected a 3-d uint8"):
        datasets.MNIST(str(folder), train=True)
    make_mnist(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(12, 12, np.uint8))
    with pytest.raises(DatasetFormatError, match="label 12 is out of range"):
        datasets.MNIST(str(folder), train=True)


def test_dataloader_over_a_vision_dataset_with_workers(tmp_path):
    make_mnist(tmp_path, n_train=40)
    ds = datasets.MNIST(str(tmp_path), transform=transforms.Compose([transforms.ToTensor(),
                                                                      transforms.Normalize((0.5,), (0.5,))]))
    a = list(DataLoader(ds, batch_size=16))
    b = list(DataLoader(ds, batch_size=16, num_workers=2))
    assert [x.shape for x, _ in a] == [(16, 1, 28, 28), (16, 1, 28, 28), (8, 1, 28, 28)]
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa._data, xb._data)
        assert ya.dtype == deepbox.int64 and ya.tolist() == yb.tolist()


# --------------------------------------------------------------------------- CIFAR-10


def write_cifar(folder, names, n=4):
    os.makedirs(folder, exist_ok=True)
    for k, name in enumerate(names):
        rec = np.zeros((n, 3073), np.uint8)
        rec[:, 0] = (np.arange(n) + k) % 10
        for i in range(n):
            planes = rec[i, 1:].reshape(3, 32, 32)
            planes[0], planes[1], planes[2] = 10 + i, 100 + k, 200  # R, G, B
            planes[0, 0, 1] = 7  # pixel (row 0, col 1) of the red plane
        rec.tofile(os.path.join(folder, name))


def test_cifar10_binary(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar(folder, [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"])
    ds = datasets.CIFAR10(str(tmp_path), train=True)
    assert len(ds) == 20 and ds.data.shape == (20, 32, 32, 3) and ds.data.dtype == np.uint8
    assert ds.targets[:6] == [0, 1, 2, 3, 1, 2]
    assert tuple(ds.data[1, 5, 5]) == (11, 100, 200) and ds.data[1, 0, 1, 0] == 7
    img, y = ds[1]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.getpixel((1, 0)) == (7, 100, 200) and y == 1
    test = datasets.CIFAR10(str(tmp_path), train=False, transform=transforms.ToTensor())
    x, _ = test[0]
    assert len(test) == 4 and x.shape == (3, 32, 32)
    np.testing.assert_allclose(x._data[:, 3, 3], np.array([10, 105, 200]) / 255, rtol=1e-6)


def test_cifar10_bad_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar(folder, ["test_batch.bin"])
    with pytest.raises(DatasetNotFoundError, match="data_batch_1.bin"):
        datasets.CIFAR10(str(tmp_path), train=True)
    with open(folder / "test_batch.bin", "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(DatasetFormatError, match=r"test_batch\.bin.*multiple of 3073"):
        datasets.CIFAR10(str(tmp_path), train=False)


# --------------------------------------------------------------------------- ImageFolder


def make_folder(root, classes=("cat", "dog"), per_class=3, mode="L"):
    for c, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            arr = np.full((6, 5), 40 * c + i, np.uint8)
            Image.fromarray(arr).convert(mode).save(root / name / f"{i}.png")


def test_image_folder(tmp_path):
    make_folder(tmp_path, classes=("zebra", "ant"))
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    ds = datasets.ImageFolder(str(tmp_path))
    assert ds.classes == ["ant", "zebra"] and ds.class_to_idx == {"ant": 0, "zebra": 1}
    assert len(ds) == 6 and ds.targets == [0, 0, 0, 1, 1, 1]
    img, y = ds[4]
    assert img.mode == "RGB" and img.size == (5, 6) and y == 1 and img.getpixel((0, 0)) == (1, 1, 1)
    x, _ = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor())[0]
    assert x.shape == (3, 6, 5)


def test_image_folder_unreadable_image(tmp_path):
    make_folder(tmp_path)
    bad = tmp_path / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = datasets.ImageFolder(str(tmp_path))
    idx = [p for p, _ in ds.samples].index(str(bad))
    with pytest.raises(DatasetFormatError, match=r"cannot read image file .*broken\.png"):
        ds[idx]


def test_image_folder_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder"):
        datasets.ImageFolder(str(tmp_path))
    (tmp_path / "cls").mkdir()
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes cls"):
        datasets.ImageFolder(str(tmp_path))


# --------------------------------------------------------------------------- load_dataset


def test_load_dataset_paths(tmp_path):
    make_folder(tmp_path / "split" / "train", per_class=4)
    make_folder(tmp_path / "split" / "test", per_class=1)
    assert len(datasets.load_dataset(str(tmp_path / "split"), train=True)) == 8
    assert len(datasets.load_dataset(str(tmp_path / "split"), train=False)) == 2
    make_folder(tmp_path / "flat", per_class=5)
    tr = datasets.load_dataset(str(tmp_path / "flat"), train=True)
    te = datasets.load_dataset(str(tmp_path / "flat"), train=False)
    assert (len(tr), len(te)) == (8, 2) and not set(tr.indices) & set(te.indices)
    assert te.classes == ["cat", "dog"] and "every fifth" in te.source and sorted(te.targets) == [0, 1]
    make_mnist(tmp_path / "idx")
    assert len(datasets.load_dataset(str(tmp_path / "idx"), train=False)) == 5
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=np.zeros((6, 8, 8), np.uint8), y_train=np.arange(6), x_test=np.zeros((2, 8, 8), np.uint8),
             y_test=np.arange(2))
    ds = datasets.load_dataset(str(npz), train=True)
    assert len(ds) == 6 and ds.classes == [str(i) for i in range(6)]


def test_load_dataset_bad_names(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*fashion-mnist"):
        datasets.load_dataset("imagenet")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="expected a .npz file or a folder"):
        datasets.load_dataset(str(tmp_path / "x.txt"))
    with pytest.raises(DatasetNotFoundError, match="mnist-10k.npz not found"):
        datasets.load_dataset("mnist-10k", root=str(tmp_path))
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros(3))
    with pytest.raises(DatasetFormatError, match="expected 'images' and 'labels'"):
        datasets.load_dataset(str(bad))
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetFormatError, match="not a readable .npz"):
        datasets.load_dataset(str(bad))


def test_mnist_10k(monkeypatch, tmp_path):
    # a stand-in for the 10 000-image file, in the layout the loader reads: the first 8000 train, the rest test
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 10000).astype(np.int64)
    np.savez(tmp_path / "mnist-10k.npz", images=images, labels=labels)
    monkeypatch.setenv("DEEPBOX_DATA", str(tmp_path))
    tr, te = datasets.load_dataset("mnist-10k", train=True), datasets.load_dataset("mnist-10k", train=False)
    assert (len(tr), len(te)) == (8000, 2000) and tr.data.shape == (8000, 28, 28)
    np.testing.assert_array_equal(te.data._data, images[8000:])
    np.testing.assert_array_equal(tr.targets._data, labels[:8000])
    info = {d["name"]: d for d in datasets.available_datasets()}
    assert info["mnist-10k"]["available"] and info["mnist-10k"]["where"].endswith("mnist-10k.npz")


def test_subset_of_vision_dataset(tmp_path):
    make_mnist(tmp_path)
    ds = datasets.MNIST(str(tmp_path))
    sub = Subset(ds, [3, 1])
    assert [y for _, y in sub] == [3, 1]


def test_to_tensor_dataset_equals_per_sample_transforms(tmp_path):
    make_mnist(tmp_path, n_train=10)
    ds = datasets.MNIST(str(tmp_path), transform=transforms.Compose([transforms.ToTensor(),
                                                                      transforms.Normalize((0.3,), (0.2,))]))
    fast = ds.to_tensor_dataset(mean=(0.3,), std=(0.2,))
    xb, yb = next(iter(DataLoader(fast, batch_size=10)))
    xs, ys = next(iter(DataLoader(ds, batch_size=10)))
    assert xb.shape == (10, 1, 28, 28) and xb.dtype == deepbox.float32
    np.testing.assert_allclose(xb._data, xs._data, rtol=1e-6, atol=1e-6)
    assert yb.tolist() == ys.tolist()

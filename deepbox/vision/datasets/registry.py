"""Datasets by name: what ``deepbox train --data`` and ``deepbox datasets`` use.

Names:

* ``fashion-mnist``: the full Fashion-MNIST when its files are found (see ``FashionMNIST``),
  otherwise the embedded subset; the dataset's ``source`` says which.
* ``fashion-mnist-small``: always the embedded subset (20,000 + 2,000 images).
* ``mnist``: MNIST from its IDX files.
* ``mnist-10k``: ``mnist-10k.npz`` (``images``/``labels``; first 8,000 train, last 2,000 test)
  found at ``root`` (a file or a folder holding it), in ``$DEEPBOX_DATA`` or in ``./data``.
* ``cifar10``: CIFAR-10 from its binary files.
* a path: a ``.npz`` file (``NpzImageDataset``), a folder with the four IDX files, or a folder
  of class folders (``ImageFolder``; with ``train/`` and ``test/`` (or ``val/``) sub-folders
  those are the splits, otherwise every fifth image, in sorted order, is the test set).
"""
from __future__ import annotations

import os

from deepbox.data.dataset import Subset
from deepbox.vision.datasets.cifar import CIFAR10
from deepbox.vision.datasets.embedded import EMBEDDED_PATH, TEST_SIZE, TRAIN_SIZE, EmbeddedFashionMNIST
from deepbox.vision.datasets.folder import IMG_EXTENSIONS, ImageFolder, find_classes
from deepbox.vision.datasets.mnist import _SPLIT_FILES, MNIST, FashionMNIST, _find_file, find_idx_files
from deepbox.vision.datasets.npz import NpzImageDataset
from deepbox.vision.datasets.vision import DatasetFormatError, DatasetNotFoundError, data_dirs
from deepbox.vision.idx import read_idx_header

__all__ = ["load_dataset", "available_datasets", "DATASET_NAMES", "FolderSplit"]

DATASET_NAMES = ("fashion-mnist", "fashion-mnist-small", "mnist", "mnist-10k", "cifar10")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
            "fashion-mnist-embedded": "fashion-mnist-small", "embedded": "fashion-mnist-small",
            "mnist10k": "mnist-10k", "cifar-10": "cifar10"}


class FolderSplit(Subset):
    """Part of an ``ImageFolder`` (a split made by ``load_dataset``), keeping its class names."""

    def __init__(self, dataset: ImageFolder, indices, train: bool, source: str):
        super().__init__(dataset, indices)
        self.classes = dataset.classes
        self.class_to_idx = dataset.class_to_idx
        self.targets = [dataset.targets[i] for i in indices]
        self.train = train
        self.source = source


def _mnist_10k_path(root: str | None) -> str | None:
    candidates = []
    if root is not None:
        root = os.path.expanduser(os.fspath(root))
        candidates.append(root if root.endswith(".npz") else os.path.join(root, "mnist-10k.npz"))
    candidates += [os.path.join(d, "mnist-10k.npz") for d in data_dirs()]
    candidates.append(os.path.join("data", "mnist-10k.npz"))
    for c in candidates:
        if os.path.isfile(c):
            return c
    return None


def _is_idx_folder(path: str) -> bool:
    return all(_find_file(path, n) for n in (*_SPLIT_FILES[True], *_SPLIT_FILES[False]))


class _SplitImageFolder(ImageFolder):
    """The test split of a folder dataset, labelled with the training split's classes.

    Each split numbering its own class folders would give one label two meanings (train {cat, dog},
    test {cat, zebra}: zebras scored as dogs); so the test split takes the training split's
    numbering, may lack some of its classes, and may not add any.
    """

    def __init__(self, root: str, train_root: str, **kw) -> None:
        self._train_classes, _ = find_classes(train_root)
        self._train_root = train_root
        super().__init__(root, allow_empty=True, **kw)

    def find_classes(self, directory: str):
        own, _ = find_classes(directory)
        extra = [c for c in own if c not in self._train_classes]
        if extra:
            raise DatasetFormatError(
                f"{directory} has class folders that {self._train_root} lacks: {', '.join(extra)} (training classes: "
                f"{', '.join(self._train_classes)}); every test class must be a training class")
        return list(self._train_classes), {c: i for i, c in enumerate(self._train_classes)}


def _image_folder(path: str, train: bool, transform, target_transform):
    for test_name in ("test", "val"):
        if os.path.isdir(os.path.join(path, "train")) and os.path.isdir(os.path.join(path, test_name)):
            kw = dict(transform=transform, target_transform=target_transform)
            if train:
                ds = ImageFolder(os.path.join(path, "train"), **kw)
            else:
                ds = _SplitImageFolder(os.path.join(path, test_name), os.path.join(path, "train"), **kw)
            ds.train = train
            return ds
    full = ImageFolder(path, transform=transform, target_transform=target_transform)
    indices = [i for i in range(len(full)) if (i % 5 == 4) != train]
    how = "every fifth image in sorted order" if not train else "all but every fifth image in sorted order"
    return FolderSplit(full, indices, train, f"{path} ({how}; no train/ and test/ sub-folders)")


def load_dataset(name: str, train: bool = True, transform=None, target_transform=None, root: str | None = None):
    """A dataset by name or path (see the module docstring for the names).

    Args:
        name: a dataset name, a ``.npz`` file, or a folder.
        train: the training or the test split.
        transform, target_transform: applied to each image and label.
        root: where to look first (a folder, or for ``mnist-10k`` the ``.npz`` file itself).

    Returns:
        A dataset of ``(image, label)`` with ``classes`` and ``source`` (where it was found;
        for ``fashion-mnist`` it says whether the full set or the embedded subset is used).

    Raises:
        ValueError: an unknown name; DatasetNotFoundError: the files were not found.
    """
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    kw = dict(transform=transform, target_transform=target_transform)
    if key == "fashion-mnist":
        try:
            return FashionMNIST(root, train=train, **kw)
        except DatasetNotFoundError:
            ds = EmbeddedFashionMNIST(train=train, **kw)
            ds.source = (f"embedded Fashion-MNIST subset ({TRAIN_SIZE:,} train / {TEST_SIZE:,} test; the full "
                         "Fashion-MNIST files were not found: install dataset-fashion-mnist or set $DEEPBOX_DATA)")
            return ds
    if key == "fashion-mnist-small":
        return EmbeddedFashionMNIST(train=train, **kw)
    if key == "mnist":
        return MNIST(root, train=train, **kw)
    if key == "cifar10":
        return CIFAR10(root, train=train, **kw)
    if key == "mnist-10k":
        path = _mnist_10k_path(root)
        if path is None:
            looked = ", ".join([*(os.path.join(d, "mnist-10k.npz") for d in data_dirs()), "data/mnist-10k.npz"])
            raise DatasetNotFoundError(f"mnist-10k.npz not found (looked at {root or '<no root given>'}, {looked}); "
                                       "pass its path or put it in a folder named by $DEEPBOX_DATA")
        ds = NpzImageDataset(path, train=train, train_fraction=0.8, **kw)
        ds.classes = [str(i) for i in range(10)]
        return ds
    path = os.path.expanduser(os.fspath(name))
    if os.path.isfile(path) and path.endswith(".npz"):
        return NpzImageDataset(path, train=train, **kw)
    if os.path.isdir(path):
        if _is_idx_folder(path):
            ds = MNIST(path, train=train, **kw)
            ds.classes = [str(i) for i in range(10)]
            return ds
        return _image_folder(path, train, transform, target_transform)
    if os.path.exists(path):
        raise ValueError(f"{path}: expected a .npz file or a folder (of class folders, or with IDX files)")
    raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASET_NAMES)}, a folder of class "
                     f"folders ({'/'.join(e.lstrip('.') for e in IMG_EXTENSIONS[:3])} images), a folder with IDX "
                     "files, or a .npz file")


def _idx_info(cls, root) -> dict:
    train, test = find_idx_files(cls, root, True), find_idx_files(cls, root, False)
    if not (train and test):
        return {"available": False, "where": None, "train_size": None, "test_size": None}
    try:
        n_train = read_idx_header(train[0])[1][0]
        n_test = read_idx_header(test[0])[1][0]
    except Exception as e:  # listed, but flagged
        return {"available": False, "where": os.path.dirname(train[0]), "train_size": None, "test_size": None,
                "error": str(e)}
    return {"available": True, "where": os.path.dirname(train[0]), "train_size": n_train, "test_size": n_test}


def available_datasets(root: str | None = None) -> list[dict]:
    """What ``load_dataset`` can load here: one dict per name with ``name``, ``available``,
    ``where`` (the folder or file found), ``train_size``, ``test_size`` and ``description``."""
    out = []
    fm = _idx_info(FashionMNIST, root)
    fm_desc = "Fashion-MNIST, 28x28 grey clothing, 10 classes"
    if not fm["available"]:
        fm.update(available=True, where=f"embedded subset ({EMBEDDED_PATH}); full files not found",
                  train_size=TRAIN_SIZE, test_size=TEST_SIZE)
    out.append({"name": "fashion-mnist", **fm, "description": fm_desc})
    out.append({"name": "fashion-mnist-small", "available": os.path.isfile(EMBEDDED_PATH), "where": EMBEDDED_PATH,
                "train_size": TRAIN_SIZE, "test_size": TEST_SIZE,
                "description": "class-balanced Fashion-MNIST subset shipped with deepbox"})
    out.append({"name": "mnist", **_idx_info(MNIST, root), "description": "MNIST digits, 28x28 grey, 10 classes"})
    p = _mnist_10k_path(root)
    out.append({"name": "mnist-10k", "available": p is not None, "where": p,
                "train_size": 8000 if p else None, "test_size": 2000 if p else None,
                "description": "10,000 MNIST digits in one .npz (first 8,000 train, last 2,000 test)"})
    cifar = {"available": False, "where": None, "train_size": None, "test_size": None}
    probe = CIFAR10.__new__(CIFAR10)
    probe.root, probe.train = (os.path.expanduser(root) if root else None), True
    folder = probe._find()
    probe.train = False
    if folder and probe._find():
        cifar = {"available": True, "where": folder, "train_size": 50000, "test_size": 10000}
    out.append({"name": "cifar10", **cifar, "description": "CIFAR-10, 32x32 colour, 10 classes (binary version)"})
    return out

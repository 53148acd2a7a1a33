"""MNIST and Fashion-MNIST from their IDX files (torchvision's ``MNIST`` and ``FashionMNIST``).

deepbox looks for the four files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (each
gzipped or not) in this order:

1. ``root`` itself, ``root/<Name>/raw`` (torchvision's layout), ``root/<Name>`` and
   ``root/<alias>`` (for example ``root/fashion-mnist``);
2. the same sub-folders of each folder in ``$DEEPBOX_DATA``;
3. for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

``download=True`` fetches missing files from the official mirrors into ``root/<Name>/raw``.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request

import numpy as np

from deepbox.vision.datasets.vision import ArrayImageDataset, DatasetFormatError, DatasetNotFoundError, data_dirs
from deepbox.vision.idx import IDXFormatError, read_idx, read_idx_header

__all__ = ["MNIST", "FashionMNIST", "find_idx_files"]

_SPLIT_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find_file(folder: str, name: str) -> str | None:
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _candidate_dirs(cls, root: str | None) -> list[str]:
    names = [os.path.join(cls.__name__, "raw"), cls.__name__, *cls.aliases]
    dirs = []
    if root is not None:
        dirs.append(root)
        dirs += [os.path.join(root, n) for n in names]
    for env in data_dirs():
        dirs += [os.path.join(env, n) for n in names]
    dirs += list(cls.system_dirs)
    return dirs


def find_idx_files(cls, root: str | None, train: bool, names: tuple[str, str] | None = None) -> tuple[str, str] | None:
    """The (images, labels) files of ``cls`` for a split, searched as the module docstring says."""
    images_name, labels_name = names or _SPLIT_FILES[train]
    for folder in _candidate_dirs(cls, root):
        images, labels = _find_file(folder, images_name), _find_file(folder, labels_name)
        if images and labels:
            return images, labels
    return None


class MNIST(ArrayImageDataset):
    """The MNIST handwritten digits (28x28 grey, 10 classes), read from its IDX files.

    Args:
        root: a folder holding the IDX files (or torchvision's ``root/MNIST/raw``); may be
            ``None`` to search only ``$DEEPBOX_DATA`` and the system folders.
        train: the training set (60,000 images) or the test set (10,000).
        transform: applied to the PIL image (or NumPy array without Pillow).
        target_transform: applied to the int label.
        download: fetch the files from the official mirrors into ``root/<Name>/raw`` when
            they are not found.

    Attributes:
        data: uint8 tensor (N, 28, 28); targets: int64 tensor (N,); classes: the names.
        source: the folder the files were read from.
    """

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    aliases: tuple[str, ...] = ("mnist",)
    system_dirs: tuple[str, ...] = ()
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root: str | None = None, train: bool = True, transform=None, target_transform=None,
                 download: bool = False) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        found = find_idx_files(type(self), self.root, train, self._split_files(train))
        if found is None and download:
            self.download()
            found = find_idx_files(type(self), self.root, train, self._split_files(train))
        if found is None:
            raise DatasetNotFoundError(self._not_found_message())
        self.images_file, self.labels_file = found
        self.source = os.path.dirname(self.images_file)
        images, labels = self._load(*found)
        self._set_arrays(images, labels)

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root or ".", type(self).__name__, "raw")

    def _not_found_message(self) -> str:
        name = type(self).__name__
        images_name, labels_name = self._split_files(self.train)
        looked = "\n".join("  " + d for d in _candidate_dirs(type(self), self.root))
        target = self.raw_folder if self.root is not None else f"<root>/{name}/raw"
        return (f"{name} {'training' if self.train else 'test'} files not found: expected {images_name}[.gz] and "
                f"{labels_name}[.gz] in one of these folders:\n{looked}\n"
                f"Put the four files {', '.join(f + '.gz' for f in self.resources)} in {target} (or in a folder "
                f"named by $DEEPBOX_DATA), or pass download=True with a root to fetch them from {self.mirrors[0]}.")

    def _split_files(self, train: bool) -> tuple[str, str]:
        """The IDX file names (images, labels) of a split, without ``.gz``."""
        return _SPLIT_FILES[train]

    @property
    def resources(self) -> list[str]:
        return [*self._split_files(True), *self._split_files(False)]

    def _load(self, images_file: str, labels_file: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            images = read_idx(images_file)
            labels = read_idx(labels_file)
        except IDXFormatError as e:
            raise DatasetFormatError(str(e)) from None
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DatasetFormatError(f"{images_file}: expected a 3-d uint8 IDX array of images (N, rows, cols), "
                                     f"found {images.dtype} with shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DatasetFormatError(f"{labels_file}: expected a 1-d uint8 IDX array of labels, "
                                     f"found {labels.dtype} with shape {labels.shape}")
        if len(labels) != len(images):
            raise DatasetFormatError(f"{labels_file} has {len(labels)} labels but {images_file} has {len(images)} "
                                     "images; expected one label per image (are the files from the same split?)")
        if labels.size and int(labels.max()) >= len(self.classes):
            raise DatasetFormatError(f"{labels_file}: label {int(labels.max())} is out of range; expected labels "
                                     f"0..{len(self.classes) - 1}")
        return images, labels

    def download(self) -> None:
        """Fetch the four gzipped IDX files into ``root/<Name>/raw`` (skipping those present)."""
        if self.root is None:
            raise DatasetNotFoundError(f"{type(self).__name__}(download=True) needs a root folder to download into")
        os.makedirs(self.raw_folder, exist_ok=True)
        for name in self.resources:
            if _find_file(self.raw_folder, name):
                continue
            filename = name + ".gz"
            target = os.path.join(self.raw_folder, filename)
            errors = []
            for mirror in self.mirrors:
                url = mirror + filename
                try:
                    _download(url, target)
                    read_idx_header(target)
                    break
                except Exception as e:  # network errors, HTTP errors, a page that is not IDX
                    errors.append(f"{url}: {e}")
                    if os.path.exists(target):
                        os.remove(target)
            else:
                raise DatasetNotFoundError(
                    f"could not download {filename} for {type(self).__name__}:\n  " + "\n  ".join(errors) +
                    f"\nWithout a network, copy the files {', '.join(f + '.gz' for f in self.resources)} into "
                    f"{self.raw_folder} (or a folder named by $DEEPBOX_DATA)" +
                    (", or install the Debian package dataset-fashion-mnist" if self.system_dirs else "") + "."
                )


def _download(url: str, target: str, timeout: float = 30.0) -> None:
    """Download ``url`` to ``target`` through a temporary file, so a failure leaves nothing behind."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class FashionMNIST(MNIST):
    """Fashion-MNIST by Zalando Research (28x28 grey clothing images, 10 classes, MIT licence).

    The same arguments and search order as :class:`MNIST`; the system folder
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``) is searched last.
    """

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    aliases = ("fashion-mnist", "fashion_mnist")
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

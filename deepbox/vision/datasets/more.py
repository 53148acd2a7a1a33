"""More of torchvision's datasets, all read from local files: CIFAR-100 (binary version), SVHN
(``.npz``, or the original ``.mat`` when SciPy is installed), KMNIST and EMNIST (IDX files).

Nothing is downloaded at run time unless ``download=True`` is given for the IDX datasets (as for
MNIST); without a network, put the files where the error message says.

* **CIFAR-100**: ``cifar-100-binary/train.bin`` and ``test.bin`` from ``cifar-100-binary.tar.gz``;
  each record is a coarse label byte, a fine label byte and 3,072 pixel bytes (R, G, B planes).
* **SVHN**: ``svhn_<split>.npz`` with ``X`` (32, 32, 3, N) or (N, 32, 32, 3) uint8 and ``y`` (N,)
  -- ``numpy.savez("svhn_train.npz", **scipy.io.loadmat("train_32x32.mat"))`` makes one -- or
  ``<split>_32x32.mat`` itself. Label 10 (the digit 0) becomes 0, as torchvision does.
* **KMNIST**: Kuzushiji-MNIST's four IDX files, the same names as MNIST's.
* **EMNIST**: ``emnist-<split>-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]``; as in torchvision
  the images are given as stored, which is transposed (apply ``.transpose(-1, -2)`` to view them).
"""
from __future__ import annotations

import os
import string

import numpy as np

from deepbox.vision.datasets.cifar import CIFAR10
from deepbox.vision.datasets.mnist import MNIST
from deepbox.vision.datasets.vision import (
    ArrayImageDataset,
    DatasetFormatError,
    DatasetNotFoundError,
    data_dirs,
)

__all__ = ["CIFAR100", "EMNIST", "KMNIST", "SVHN"]

_CIFAR100_FINE = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()


class CIFAR100(CIFAR10):
    """CIFAR-100 (32x32 colour, 100 fine classes in 20 superclasses) from ``cifar-100-binary``.

    ``targets`` are the fine labels (as torchvision's); ``coarse_targets`` the superclasses.
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    base_folder = "cifar-100-binary"
    train_list = ["train.bin"]
    test_list = ["test.bin"]
    classes = list(_CIFAR100_FINE)

    def __init__(self, root: str | None = None, train: bool = True, transform=None, target_transform=None,
                 download: bool = False) -> None:
        super().__init__(root, train, transform, target_transform, download)
        meta = os.path.join(self.source, "fine_label_names.txt")
        if os.path.isfile(meta):
            with open(meta) as f:
                names = [line.strip() for line in f if line.strip()]
            if len(names) == 100:
                self.classes = names

    def _read_batch(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        record = 2 + 32 * 32 * 3
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DatasetFormatError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-100 records; "
                                     f"expected a multiple of {record} (2 label bytes + 3072 pixel bytes)")
        rec = raw.reshape(-1, record)
        coarse, fine = rec[:, 0], rec[:, 1]
        if fine.max() > 99 or coarse.max() > 19:
            raise DatasetFormatError(f"{path}: labels out of range (fine {int(fine.max())} > 99 or coarse "
                                     f"{int(coarse.max())} > 19); is this a CIFAR-100 binary file?")
        self.coarse_targets = getattr(self, "coarse_targets", []) + coarse.astype(np.int64).tolist()
        images = rec[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), fine


class SVHN(ArrayImageDataset):
    """Street View House Numbers (32x32 colour digits) from ``svhn_<split>.npz`` or ``<split>_32x32.mat``.

    Args:
        root: the folder holding the files (also searched: ``root/svhn``, ``$DEEPBOX_DATA/svhn``).
        split: ``"train"`` (73,257), ``"test"`` (26,032) or ``"extra"`` (531,131).

    Attributes: ``data`` uint8 (N, 3, 32, 32) as torchvision's; ``labels`` int64 0..9.
    """

    classes = [str(d) for d in range(10)]
    split_list = ("train", "test", "extra")

    def __init__(self, root: str | None = None, split: str = "train", transform=None, target_transform=None,
                 download: bool = False) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        if split not in self.split_list:
            raise ValueError(f'Unknown value "{split}" for argument split. Valid values are '
                             f"{{{', '.join(self.split_list)}}}.")
        self.split = split
        path = self._find()
        if path is None:
            dirs = self._dirs()
            raise DatasetNotFoundError(
                f"SVHN {split} files not found: expected svhn_{split}.npz (or {split}_32x32.mat with SciPy "
                f"installed) in one of:\n" + "\n".join("  " + d for d in dirs) +
                f"\nMake the .npz once with numpy.savez('svhn_{split}.npz', **scipy.io.loadmat('{split}_32x32.mat'))."
                + (" deepbox does not download SVHN." if download else ""))
        self.source = path
        X, y = self._read(path)
        if X.ndim != 4 or X.dtype != np.uint8:
            raise DatasetFormatError(f"{path}: expected X as uint8 images (32, 32, 3, N) or (N, 32, 32, 3), got "
                                     f"{X.dtype} {X.shape}")
        if X.shape[:3] == (32, 32, 3):
            X = X.transpose(3, 2, 0, 1)  # the .mat layout (H, W, C, N) -> (N, C, H, W)
        elif X.shape[1:] == (32, 32, 3):
            X = X.transpose(0, 3, 1, 2)
        y = np.asarray(y).reshape(-1).astype(np.int64)
        if len(y) != len(X):
            raise DatasetFormatError(f"{path}: {len(y)} labels for {len(X)} images")
        if y.size and (y.min() < 0 or y.max() > 10):
            raise DatasetFormatError(f"{path}: labels must be in 0..10 (10 is the digit 0), found "
                                     f"{int(y.min())}..{int(y.max())}")
        np.place(y, y == 10, 0)
        self._set_arrays(X, y)

    @property
    def labels(self):
        return self.targets

    def _dirs(self) -> list[str]:
        dirs = [] if self.root is None else [self.root, os.path.join(self.root, "svhn")]
        return dirs + [os.path.join(d, "svhn") for d in data_dirs()] + list(data_dirs())

    def _find(self) -> str | None:
        for d in self._dirs():
            for name in (f"svhn_{self.split}.npz", f"{self.split}_32x32.mat"):
                path = os.path.join(d, name)
                if os.path.isfile(path):
                    return path
        return None

    @staticmethod
    def _read(path: str):
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                if "X" not in z or "y" not in z:
                    raise DatasetFormatError(f"{path}: expected arrays 'X' and 'y', found {sorted(z.files)}")
                return z["X"], z["y"]
        try:
            from scipy.io import loadmat
        except ImportError:
            raise DatasetFormatError(f"{path}: reading .mat files needs SciPy (pip install scipy), or convert it to "
                                     "an .npz once") from None
        m = loadmat(path)
        return m["X"], m["y"]

    def __getitem__(self, index: int):
        img = self.data._data[index].transpose(1, 2, 0)
        target = int(self.targets._data[index])
        return self._finish(img, target)

    def _finish(self, img, target):
        from deepbox.vision.datasets.vision import _has_pil

        if _has_pil():
            from PIL import Image

            img = Image.fromarray(img)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class KMNIST(MNIST):
    """Kuzushiji-MNIST (Clanuwat et al., 2018): 28x28 grey cursive Japanese characters, 10 classes, IDX files."""

    mirrors = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    aliases = ("kmnist",)
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


_MERGED = set("cijklmopsuvwxyz")
_ALL = set(string.digits + string.ascii_letters)


class EMNIST(MNIST):
    """EMNIST (Cohen et al., 2017): handwritten digits and letters in six splits, from its IDX files."""

    url = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
    splits = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
    aliases = ("emnist", "EMNIST/raw", "gzip")
    classes_split_dict = {
        "byclass": sorted(_ALL),
        "bymerge": sorted(_ALL - _MERGED),
        "balanced": sorted(_ALL - _MERGED),
        "letters": ["N/A", *string.ascii_lowercase],
        "digits": list(string.digits),
        "mnist": list(string.digits),
    }

    def __init__(self, root: str | None = None, split: str = "mnist", **kwargs) -> None:
        if split not in self.splits:
            raise ValueError(f'Unknown value "{split}" for argument split. Valid values are '
                             f"{{{', '.join(self.splits)}}}.")
        self.split = split
        self.classes = self.classes_split_dict[split]
        super().__init__(root, **kwargs)

    def _split_files(self, train: bool) -> tuple[str, str]:
        prefix = f"emnist-{self.split}-{'train' if train else 'test'}"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def download(self) -> None:
        raise DatasetNotFoundError(f"EMNIST is distributed as one archive ({self.url}); unpack its gzip/ folder into "
                                   f"{self.raw_folder} (deepbox does not download it)")

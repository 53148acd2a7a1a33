"""CIFAR-10 from the binary version of its files (never the pickled Python version)."""
from __future__ import annotations

import os
import tarfile

import numpy as np

from deepbox.vision.datasets.mnist import _download
from deepbox.vision.datasets.vision import DatasetFormatError, DatasetNotFoundError, VisionDataset, _has_pil, data_dirs

__all__ = ["CIFAR10"]

_RECORD = 1 + 32 * 32 * 3


class CIFAR10(VisionDataset):
    """CIFAR-10 (32x32 colour, 10 classes) read from ``cifar-10-batches-bin``.

    The binary files hold records of one label byte and 3,072 pixel bytes (the red, green
    and blue 32x32 planes). deepbox looks in ``root/cifar-10-batches-bin``, ``root``, then
    ``$DEEPBOX_DATA/cifar-10-batches-bin``.

    Args:
        root: the folder holding ``cifar-10-batches-bin`` (or the files themselves).
        train: ``data_batch_1.bin`` ... ``data_batch_5.bin`` (50,000) or ``test_batch.bin`` (10,000).
        transform, target_transform: applied to the PIL RGB image and to the int label.
        download: fetch and unpack ``cifar-10-binary.tar.gz`` into ``root`` if missing.

    Attributes:
        data: uint8 NumPy array (N, 32, 32, 3), as torchvision's; targets: a list of ints.
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    base_folder = "cifar-10-batches-bin"
    train_list = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_list = ["test_batch.bin"]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root: str | None = None, train: bool = True, transform=None, target_transform=None,
                 download: bool = False) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        folder = self._find()
        if folder is None and download:
            self.download()
            folder = self._find()
        if folder is None:
            looked = "\n".join("  " + d for d in self._candidate_dirs())
            raise DatasetNotFoundError(
                f"CIFAR10 binary files not found: expected {', '.join(self._files())} in one of:\n{looked}\n"
                f"Unpack cifar-10-binary.tar.gz ({self.url}) into the root folder (it makes {self.base_folder}/), "
                "or pass download=True with a root.")
        self.source = folder
        images, labels = [], []
        for name in self._files():
            x, y = self._read_batch(os.path.join(folder, name))
            images.append(x)
            labels.append(y)
        self.data = np.concatenate(images)
        self.targets = np.concatenate(labels).astype(np.int64).tolist()
        meta = os.path.join(folder, "batches.meta.txt")
        if os.path.isfile(meta):
            with open(meta) as f:
                names = [line.strip() for line in f if line.strip()]
            if len(names) == 10:
                self.classes = names

    def _files(self) -> list[str]:
        return self.train_list if self.train else self.test_list

    def _candidate_dirs(self) -> list[str]:
        dirs = []
        if self.root is not None:
            dirs += [os.path.join(self.root, self.base_folder), self.root]
        dirs += [os.path.join(d, self.base_folder) for d in data_dirs()]
        return dirs

    def _find(self) -> str | None:
        for d in self._candidate_dirs():
            if all(os.path.isfile(os.path.join(d, f)) for f in self._files()):
                return d
        return None

    @staticmethod
    def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % _RECORD:
            raise DatasetFormatError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records; "
                                     f"expected a multiple of {_RECORD} (1 label byte + 3072 pixel bytes)")
        rec = raw.reshape(-1, _RECORD)
        labels = rec[:, 0]
        if labels.max() > 9:
            raise DatasetFormatError(f"{path}: label {int(labels.max())} is out of range; expected 0..9 "
                                     "(is this the CIFAR-100 binary file?)")
        images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), labels

    def download(self) -> None:
        if self.root is None:
            raise DatasetNotFoundError("CIFAR10(download=True) needs a root folder to download into")
        os.makedirs(self.root, exist_ok=True)
        archive = os.path.join(self.root, "cifar-10-binary.tar.gz")
        try:
            if not os.path.isfile(archive):
                _download(self.url, archive)
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():  # refuse paths that would leave root
                    if member.name.startswith(("/", "..")) or ".." in member.name.split("/"):
                        raise DatasetFormatError(f"{archive}: unsafe path {member.name!r} in the archive")
                tar.extractall(self.root)
        except Exception as e:
            raise DatasetNotFoundError(
                f"could not download or unpack {self.url}: {e}\nWithout a network, unpack cifar-10-binary.tar.gz "
                f"into {self.root} so that {os.path.join(self.root, self.base_folder)} holds the .bin files."
            ) from None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], self.targets[index]
        if _has_pil():
            from PIL import Image

            img = Image.fromarray(img)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}\nSource: {self.source}"

"""The base of deepbox's image datasets, and the errors they raise."""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from deepbox import backend
from deepbox.data.dataset import Dataset
from deepbox.tensor import _make

__all__ = ["VisionDataset", "ArrayImageDataset", "DatasetNotFoundError", "DatasetFormatError", "data_dirs"]


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not where deepbox looked; the message says where it looked."""


class DatasetFormatError(ValueError):
    """A dataset file that is corrupt, truncated, or does not match its companion file."""


# without class names, labels may imply at most this many classes, or as many as there are images
UNNAMED_CLASSES_MAX = 1000


def check_labels(y, n_classes: int | None, n_images: int, what: str) -> int:
    """The number of classes that integer labels ``y`` imply, checked before anything is made from them.

    With ``n_classes`` (the data names its classes) every label must be below it; without, the
    labels may imply at most ``max(n_images, UNNAMED_CLASSES_MAX)`` classes, so that one corrupt
    label (10**9) is an error instead of a billion made-up class names. Raises DatasetFormatError.
    """
    if len(y) == 0:
        return 0
    lo, hi = int(y.min()), int(y.max())
    if lo < 0:
        raise DatasetFormatError(f"{what}: label {lo} is negative; expected labels 0..K-1")
    if n_classes is not None and hi >= n_classes:
        raise DatasetFormatError(f"{what}: label {hi} but only {n_classes} class names; expected labels "
                                 f"0..{n_classes - 1}")
    limit = max(n_images, UNNAMED_CLASSES_MAX)
    if n_classes is None and hi >= limit:
        raise DatasetFormatError(
            f"{what}: label {hi} would mean {hi + 1:,} classes for {n_images:,} images; expected labels 0..K-1 "
            f"with K at most {limit:,} (name the classes, e.g. a 'classes' array in a .npz file, to have more)")
    return hi + 1


def data_dirs() -> list[str]:
    """The folders named by ``$DEEPBOX_DATA`` (several may be joined with ``os.pathsep``)."""
    env = os.environ.get("DEEPBOX_DATA", "")
    return [os.path.expanduser(p) for p in env.split(os.pathsep) if p]


@functools.cache
def _has_pil() -> bool:
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


class VisionDataset(Dataset):
    """Base class of image datasets, torchvision's ``VisionDataset``.

    Args:
        root: where the dataset's files are (or go).
        transform: applied to the image.
        target_transform: applied to the label.
    """

    _repr_indent = 4

    def __init__(self, root=None, transform=None, target_transform=None):
        self.root = os.path.expanduser(os.fspath(root)) if root is not None else None
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"Root location: {self.root}")
        lines += [line for line in self.extra_repr().splitlines() if line]
        if self.transform is not None:
            lines.append("Transform: " + repr(self.transform).replace("\n", "\n" + " " * self._repr_indent))
        if self.target_transform is not None:
            lines.append(f"Target transform: {self.target_transform!r}")
        return "\n".join([f"Dataset {type(self).__name__}"] + [" " * self._repr_indent + x for x in lines])


class ArrayImageDataset(VisionDataset):
    """Images held in memory as a uint8 tensor ``data`` (N, H, W) or (N, H, W, C) with int64 ``targets``.

    ``dataset[i]`` is ``(image, label)``: the image is a PIL image when Pillow is
    installed (as torchvision's MNIST returns), else a NumPy array (H, W[, C]); then
    ``transform`` and ``target_transform`` apply.

    Attributes:
        data: uint8 tensor of the images.
        targets: int64 tensor of the labels.
        classes: the class names, by label.
        source: where the images came from (a folder, file or "embedded").
    """

    classes: list[str] = []

    def _set_arrays(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.data = _make(np.ascontiguousarray(images, dtype=np.uint8))
        self.targets = _make(np.asarray(labels).astype(np.int64))

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data._data)

    def to_tensor_dataset(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        """All images at once as a ``TensorDataset`` of float32 (N, C, H, W) in [0, 1] and int64 labels.

        The same values as ``ToTensor()`` (then ``Normalize(mean, std)`` if given) per sample,
        but the DataLoader then batches by fancy-indexing, with no per-sample Python: the
        fast way to train on data that fits in memory. ``transform`` is not applied.
        """
        from deepbox.data.dataset import TensorDataset

        fdt = backend.default_float_np()
        x = self.data._data
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        x = x.astype(fdt) / fdt.type(255)
        if mean is not None or std is not None:
            if mean is None or std is None:
                raise ValueError("to_tensor_dataset needs both mean and std, or neither")
            m = np.asarray(mean, dtype=fdt).reshape(-1, 1, 1)
            sd = np.asarray(std, dtype=fdt).reshape(-1, 1, 1)
            if (sd == 0).any():
                raise ValueError("std evaluated to zero, leading to division by zero.")
            x = (x - m) / sd
        return TensorDataset(_make(np.ascontiguousarray(x)), self.targets)

    def __getitem__(self, index: int):
        img = self.data._data[index]
        target = int(self.targets._data[index])
        if _has_pil():
            from PIL import Image

            img = Image.fromarray(img)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def extra_repr(self) -> str:
        split = getattr(self, "train", None)
        out = [] if split is None else [f"Split: {'Train' if split else 'Test'}"]
        if getattr(self, "source", None):
            out.append(f"Source: {self.source}")
        return "\n".join(out)

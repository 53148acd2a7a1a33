"""Image data for the command line: a dataset as normalised float32 arrays, and per-image transforms.

``deepbox train`` holds the whole dataset in memory as one (N, C, H, W) float32 array, so a
batch is one fancy-index (``TensorDataset``'s batched fetch) instead of N per-sample
transforms (``TransformedImages`` applies a transform per image, for augmentation);
the embedded 20,000 training images take 63 MB. Pixels are scaled to [0, 1] and then
normalised with the training split's per-channel mean and standard deviation, which the run
records so that ``eval`` and ``predict`` normalise the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepbox.data.dataset import BatchedSamples, Dataset
from deepbox.vision.datasets.vision import check_labels

__all__ = ["ImageData", "load_image_data", "normalise", "channel_stats", "TransformedImages"]


@dataclass
class ImageData:
    x_train: np.ndarray  # (N, C, H, W) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str


def _arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) uint8 images and (N,) int64 labels of an image dataset."""
    data = getattr(ds, "data", None)
    targets = getattr(ds, "targets", None)
    if data is not None and targets is not None and hasattr(data, "_data"):
        x = np.asarray(data._data)
        y = np.asarray(getattr(targets, "_data", targets), dtype=np.int64)
    else:
        # a dataset of PIL images (a folder of image files): read each once, at the first image's size
        xs, ys, size = [], [], None
        for i in range(len(ds)):
            img, label = ds[i]
            if hasattr(img, "size") and hasattr(img, "resize"):
                size = size or img.size
                if img.size != size:
                    img = img.resize(size)
                img = np.asarray(img)
            xs.append(np.asarray(img))
            ys.append(int(label))
        if not xs:
            raise ValueError(f"the dataset {getattr(ds, 'source', '')} holds no images; expected at least one")
        x, y = np.stack(xs), np.asarray(ys, dtype=np.int64)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    else:
        raise ValueError(f"images of shape {x.shape[1:]}; expected (H, W) or (H, W, C)")
    if x.dtype != np.uint8:
        x = np.clip(x if x.max() > 1.0 else x * 255.0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(x), y


def _numbered(names: list[str]) -> bool:
    """Names that a loader made up from the labels ("0", "1", ...), not read from the data."""
    return names == [str(i) for i in range(len(names))]


def class_names(train_names: list[str], test_names: list[str], what: str) -> list[str]:
    """The class names both splits agree on; a ``ValueError`` naming the classes if they do not.

    Made-up names ("0", "1", ...) agree with any list (the labels' range is checked apart); names
    read from the data must be the same list in the same order (the same label, the same class).
    """
    if train_names == test_names:
        return list(train_names)
    if _numbered(train_names) or _numbered(test_names):  # one side has no names to compare: the longer list wins
        return list(max(train_names, test_names, key=lambda n: (len(n), not _numbered(n))))
    only_train = [c for c in train_names if c not in test_names]
    only_test = [c for c in test_names if c not in train_names]
    diff = "; ".join(x for x in (f"only in the training split: {', '.join(only_train)}" if only_train else "",
                                 f"only in the test split: {', '.join(only_test)}" if only_test else "") if x) \
        or "the same names in another order"
    raise ValueError(f"{what}: the training split's classes ({', '.join(train_names)}) and the test split's "
                     f"({', '.join(test_names)}) differ ({diff}); a label must mean the same class in both")


def load_image_data(name: str, limit_train: int | None = None, limit_test: int | None = None) -> ImageData:
    """Both splits of dataset ``name`` (a name or a path, see ``deepbox.vision.datasets.load_dataset``).

    Raises ``ValueError`` naming the problem for: an empty split, images of different sizes in
    the two splits, class names that differ between the splits, and labels outside 0..K-1.
    """
    from deepbox.vision.datasets import load_dataset

    train = load_dataset(name, train=True)
    test = load_dataset(name, train=False)
    x_train, y_train = _arrays(train)
    x_test, y_test = _arrays(test)
    for split, x in (("training", x_train), ("test", x_test)):
        if len(x) == 0:
            raise ValueError(f"dataset {name!r}: the {split} split holds no images; expected at least one")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"dataset {name!r}: training images are {x_train.shape[1:]} (C, H, W) but test images are "
                         f"{x_test.shape[1:]}; expected one size")
    names = [str(c) for c in getattr(train, "classes", None) or []], \
        [str(c) for c in getattr(test, "classes", None) or []]
    named = [n if n and not _numbered(n) else None for n in names]
    k = max(check_labels(y_train, len(named[0]) if named[0] else None, len(x_train) + len(x_test),
                         f"dataset {name!r}, training split"),
            check_labels(y_test, len(named[1]) if named[1] else None, len(x_train) + len(x_test),
                         f"dataset {name!r}, test split"))
    classes = class_names(*names, f"dataset {name!r}")
    if len(classes) < k:
        classes = [str(i) for i in range(k)]
    if limit_train:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    if limit_test:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    return ImageData(x_train, y_train, x_test, y_test, classes, str(getattr(train, "source", name)))


def normalise(x_uint8: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 ``(x / 255 - mean) / std`` per channel."""
    mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    x = x_uint8.astype(np.float32)
    x *= np.float32(1 / 255)
    x -= mean
    x /= std
    return x


def channel_stats(x_uint8: np.ndarray) -> tuple[list[float], list[float]]:
    x = x_uint8.astype(np.float32) / 255
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3))
    return [float(m) for m in mean], [float(max(s, 1e-6)) for s in std]


class TransformedImages(Dataset):
    """Images (a tensor ``(N, C, H, W)``) and labels, with ``transform`` applied to each image as it
    is fetched (for example ``deepbox.cli.train.augmentation``); a batch is stacked in one array.

    Random transforms draw from deepbox's default generator: in this process that is the one
    ``deepbox.manual_seed`` seeds and a checkpoint saves; in DataLoader workers, each worker's own.
    """

    def __init__(self, images, labels, transform) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels; expected one label per image")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        x = np.stack([self.transform(self.images[int(i)])._data for i in idx])
        return BatchedSamples((x, self.labels._data[idx]))

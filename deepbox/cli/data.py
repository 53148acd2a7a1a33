"""Image data for the command line: a dataset as normalised float32 arrays, and per-image transforms.

``deepbox train`` holds the whole dataset in memory as one (N, C, H, W) float32 array, so a
batch is one fancy-index (``TensorDataset``'s batched fetch) instead of N per-sample
transforms (``TransformedImages`` applies a transform per image, for augmentation);
the embedded 10,000 images take 31 MB. Pixels are scaled to [0, 1] and then
normalised with the training split's per-channel mean and standard deviation, which the run
records so that ``eval`` and ``predict`` normalise the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepbox.data.dataset import BatchedSamples, Dataset

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


def load_image_data(name: str, limit_train: int | None = None, limit_test: int | None = None) -> ImageData:
    """Both splits of dataset ``name`` (a name or a path, see ``deepbox.vision.datasets.load_dataset``)."""
    from deepbox.vision.datasets import load_dataset

    train = load_dataset(name, train=True)
    test = load_dataset(name, train=False)
    x_train, y_train = _arrays(train)
    x_test, y_test = _arrays(test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"dataset {name!r}: training images are {x_train.shape[1:]} (C, H, W) but test images are "
                         f"{x_test.shape[1:]}; expected one size")
    classes = [str(c) for c in getattr(train, "classes", [])]
    k = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
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

"""Image classification data stored as arrays in a ``.npz`` file."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from deepbox.vision.datasets.vision import ArrayImageDataset, DatasetFormatError, check_labels

__all__ = ["NpzImageDataset"]

_SPLIT_KEYS = [("x_train", "y_train", "x_test", "y_test"),
               ("train_images", "train_labels", "test_images", "test_labels")]


class NpzImageDataset(ArrayImageDataset):
    """Images and labels from a ``.npz`` file (loaded without pickle).

    Recognised layouts: ``x_train``/``y_train``/``x_test``/``y_test`` (Keras),
    ``train_images``/``train_labels``/``test_images``/``test_labels``, or one ``images``/
    ``labels`` pair, of which the first ``train_fraction`` (default 80 %) is the training set
    and the rest the test set (``mnist-10k.npz``: 8,000 and 2,000).

    Args:
        path: the ``.npz`` file.
        train: the training or the test part.
        transform, target_transform: applied to the image (PIL, or NumPy without Pillow) and label.
        train_fraction: the share of a single ``images``/``labels`` pair used for training.
        classes: class names (default: the ``classes`` array of the file, else "0", "1", ...).

    Images are uint8 (N, H, W) or (N, H, W, C) with C in 1, 3, 4; labels are integers 0..K-1.
    """

    def __init__(self, path: str, train: bool = True, transform=None, target_transform=None,
                 train_fraction: float = 0.8, classes: list[str] | None = None) -> None:
        super().__init__(None, transform=transform, target_transform=target_transform)
        path = os.path.expanduser(os.fspath(path))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such .npz file")
        self.train = train
        self.path = path
        try:
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                for layout in _SPLIT_KEYS:
                    if set(layout) <= keys:
                        xk, yk = (layout[0], layout[1]) if train else (layout[2], layout[3])
                        images, labels = z[xk], z[yk]
                        break
                else:
                    if not {"images", "labels"} <= keys:
                        raise DatasetFormatError(
                            f"{path}: found arrays {sorted(keys)}; expected 'images' and 'labels', or "
                            "'x_train', 'y_train', 'x_test', 'y_test', or 'train_images', 'train_labels', "
                            "'test_images', 'test_labels'")
                    images, labels = z["images"], z["labels"]
                    n_train = int(round(len(images) * train_fraction))
                    images, labels = (images[:n_train], labels[:n_train]) if train else \
                        (images[n_train:], labels[n_train:])
                file_classes = [str(c) for c in z["classes"]] if "classes" in keys else None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            if isinstance(e, DatasetFormatError):
                raise
            raise DatasetFormatError(f"{path}: not a readable .npz file ({e})") from None
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1]
                                                                      not in (1, 3, 4)):
            raise DatasetFormatError(f"{path}: images must be uint8 (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
                                     f"found {images.dtype} with shape {images.shape}")
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
            raise DatasetFormatError(f"{path}: labels must be integers, one per image; found {labels.dtype} with "
                                     f"shape {labels.shape} for {len(images)} images")
        names = classes or file_classes
        n_classes = check_labels(labels, len(names) if names else None, len(images), path)
        self._set_arrays(images, labels)
        self.classes = names or [str(i) for i in range(n_classes)]
        self.source = path

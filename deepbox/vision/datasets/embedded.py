"""The Fashion-MNIST subset that ships inside deepbox (see ``deepbox/vision/_data/README.md``)."""
from __future__ import annotations

import functools
import os

import numpy as np

from deepbox.vision.datasets.mnist import FashionMNIST
from deepbox.vision.datasets.vision import ArrayImageDataset, DatasetFormatError

__all__ = ["EmbeddedFashionMNIST", "EMBEDDED_PATH", "TRAIN_SIZE", "TEST_SIZE"]

# the archive's sizes, for listings that should not open it (a test checks them against the file)
TRAIN_SIZE, TEST_SIZE = 20000, 2000

EMBEDDED_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_data",
                             "fashion_mnist_small.npz")


@functools.lru_cache(maxsize=1)
def _arrays() -> dict[str, np.ndarray]:
    try:
        with np.load(EMBEDDED_PATH, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DatasetFormatError(f"the embedded dataset {EMBEDDED_PATH} is missing from this deepbox install; "
                                 "reinstall deepbox (it is package data)") from None
    except Exception as e:
        raise DatasetFormatError(f"the embedded dataset {EMBEDDED_PATH} is unreadable ({e}); "
                                 "reinstall deepbox or rebuild it with deepbox/vision/_data/make_embedded.py") from None
    for a in out.values():
        a.setflags(write=False)  # shared between datasets: nobody changes it in place
    return out


class EmbeddedFashionMNIST(ArrayImageDataset):
    """A class-balanced Fashion-MNIST subset shipped with deepbox: no download, no files needed.

    20,000 training images (2,000 per class) drawn from the Fashion-MNIST training set and
    2,000 test images (200 per class) from its test set, chosen with a fixed seed. The first
    10,000 training images are the earlier 10,000-image subset, in its order (``data[:10000]``,
    ``deepbox train --limit-train 10000``).

    Args:
        train: the 20,000 training images or the 2,000 test images.
        transform: applied to the PIL image (or NumPy array without Pillow).
        target_transform: applied to the int label.

    Attributes:
        data: uint8 tensor (N, 28, 28); targets: int64 tensor (N,); classes: the names;
        source_index: each image's index in the original Fashion-MNIST file.
    """

    classes = FashionMNIST.classes

    def __init__(self, train: bool = True, transform=None, target_transform=None) -> None:
        super().__init__(None, transform=transform, target_transform=target_transform)
        self.train = train
        split = "train" if train else "test"
        arrays = _arrays()
        self._set_arrays(arrays[f"{split}_images"], arrays[f"{split}_labels"])
        self.source_index = arrays[f"{split}_source_index"]
        self.source = f"embedded Fashion-MNIST subset ({EMBEDDED_PATH})"

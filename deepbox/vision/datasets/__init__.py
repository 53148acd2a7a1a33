"""Image datasets with torchvision's names, plus deepbox's embedded default and name lookup."""
from __future__ import annotations

from deepbox.vision.datasets.cifar import CIFAR10
from deepbox.vision.datasets.embedded import EmbeddedFashionMNIST
from deepbox.vision.datasets.folder import IMG_EXTENSIONS, DatasetFolder, ImageFolder, default_loader
from deepbox.vision.datasets.mnist import MNIST, FashionMNIST
from deepbox.vision.datasets.more import CIFAR100, EMNIST, KMNIST, SVHN
from deepbox.vision.datasets.npz import NpzImageDataset
from deepbox.vision.datasets.registry import DATASET_NAMES, FolderSplit, available_datasets, load_dataset
from deepbox.vision.datasets.vision import ArrayImageDataset, DatasetFormatError, DatasetNotFoundError, VisionDataset

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "EMNIST",
    "KMNIST",
    "SVHN",
    "DATASET_NAMES",
    "IMG_EXTENSIONS",
    "ArrayImageDataset",
    "DatasetFolder",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "EmbeddedFashionMNIST",
    "FashionMNIST",
    "FolderSplit",
    "ImageFolder",
    "MNIST",
    "NpzImageDataset",
    "VisionDataset",
    "available_datasets",
    "default_loader",
    "load_dataset",
]

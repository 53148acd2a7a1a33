"""Datasets of image files in class folders (torchvision's ``DatasetFolder`` and ``ImageFolder``).

The layout is ``root/<class name>/<any sub-folders>/<file>``; classes are the sorted
folder names and get labels 0, 1, ... in that order.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from deepbox.vision.datasets.vision import DatasetFormatError, VisionDataset

__all__ = ["DatasetFolder", "ImageFolder", "IMG_EXTENSIONS", "default_loader", "pil_loader", "find_classes",
           "make_dataset"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def find_classes(directory: str) -> tuple[list[str], dict[str, int]]:
    """The sorted class folder names in ``directory`` and their labels."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} is not a folder; expected a folder with one sub-folder per class")
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}; expected root/<class>/<image files>")
    return classes, {c: i for i, c in enumerate(classes)}


def make_dataset(directory: str, class_to_idx: dict[str, int], extensions: tuple[str, ...] | None = None,
                 is_valid_file: Callable[[str], bool] | None = None,
                 allow_empty: bool = False) -> list[tuple[str, int]]:
    """The sorted (path, label) pairs of the files under each class folder."""
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("Both extensions and is_valid_file cannot be None or not None at the same time")
    if extensions is not None:
        def is_valid_file(path: str) -> bool:
            return path.lower().endswith(extensions)

    instances = []
    empty = []
    for target_class in sorted(class_to_idx):
        class_index = class_to_idx[target_class]
        target_dir = os.path.join(directory, target_class)
        count = 0
        for dirpath, dirnames, fnames in sorted(os.walk(target_dir, followlinks=True)):
            dirnames.sort()
            for fname in sorted(fnames):
                path = os.path.join(dirpath, fname)
                if is_valid_file(path):
                    instances.append((path, class_index))
                    count += 1
        if count == 0:
            empty.append(target_class)
    if empty and not allow_empty:
        msg = f"Found no valid file for the classes {', '.join(empty)} in {directory}. "
        if extensions is not None:
            msg += f"Supported extensions are: {', '.join(extensions)}"
        raise FileNotFoundError(msg)
    return instances


def pil_loader(path: str):
    """Open an image file with Pillow as RGB; an unreadable file raises an error naming it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install pillow") from None
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DatasetFormatError(f"cannot read image file {path}: {e}; expected an image Pillow can open "
                                 f"({', '.join(IMG_EXTENSIONS)})") from None


def default_loader(path: str):
    return pil_loader(path)


class DatasetFolder(VisionDataset):
    """Samples in class folders, loaded by ``loader``.

    Args:
        root: the folder of class folders.
        loader: reads a sample from its path.
        extensions: the accepted file endings (exclusive with ``is_valid_file``).
        transform, target_transform: applied to the sample and to the label.
        is_valid_file: decides which files are samples.
        allow_empty: accept class folders without samples.

    Attributes:
        classes, class_to_idx, samples (list of (path, label)), targets (list of labels).
    """

    def __init__(self, root: str, loader: Callable, extensions: tuple[str, ...] | None = None, transform=None,
                 target_transform=None, is_valid_file: Callable[[str], bool] | None = None,
                 allow_empty: bool = False) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        classes, class_to_idx = self.find_classes(self.root)
        samples = self.make_dataset(self.root, class_to_idx, extensions, is_valid_file, allow_empty=allow_empty)
        self.loader = loader
        self.extensions = extensions
        self.classes = classes
        self.class_to_idx = class_to_idx
        self.samples = samples
        self.targets = [s[1] for s in samples]
        self.source = self.root

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        return make_dataset(directory, class_to_idx, extensions=extensions, is_valid_file=is_valid_file,
                            allow_empty=allow_empty)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return find_classes(directory)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self) -> int:
        return len(self.samples)


class ImageFolder(DatasetFolder):
    """Images in class folders (PNG, JPEG, ... read with Pillow as RGB), torchvision's ``ImageFolder``.

    Args:
        root: the folder of class folders, ``root/<class>/<image>``.
        transform, target_transform: applied to the PIL image and to the label.
        loader: reads an image (default: Pillow, converted to RGB).
        is_valid_file: decides which files are images (default: by extension).
        allow_empty: accept class folders without images.
    """

    def __init__(self, root: str, transform=None, target_transform=None, loader: Callable = default_loader,
                 is_valid_file: Callable[[str], bool] | None = None, allow_empty: bool = False) -> None:
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None, transform=transform,
                         target_transform=target_transform, is_valid_file=is_valid_file, allow_empty=allow_empty)
        self.imgs = self.samples

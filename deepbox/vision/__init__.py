"""Computer vision: torchvision-style ``datasets``, ``transforms``, ``utils`` (image grids, drawing) and ``io``
(reading and writing images), and the IDX format."""
from __future__ import annotations

from deepbox.vision import datasets, idx, io, transforms, utils  # noqa: F401

__all__ = ["datasets", "idx", "io", "transforms", "utils"]

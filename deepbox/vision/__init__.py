"""Computer vision: torchvision-style ``datasets``, ``transforms``, ``utils`` (image grids, drawing) and ``io``
(reading and writing images), ``models`` (torchvision's ImageNet builders), and the IDX format."""
from __future__ import annotations

from deepbox.vision import datasets, idx, io, models, transforms, utils  # noqa: F401

__all__ = ["datasets", "idx", "io", "models", "transforms", "utils"]

"""Computer vision data: torchvision-style ``datasets`` and ``transforms``, and the IDX format."""
from __future__ import annotations

from deepbox.vision import datasets, idx, transforms  # noqa: F401

__all__ = ["datasets", "idx", "transforms"]

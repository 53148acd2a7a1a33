"""torchvision-style image transforms for PIL images, deepbox tensors (C, H, W) and NumPy arrays (H, W[, C])."""
from __future__ import annotations

from deepbox.vision.transforms import functional  # noqa: F401
from deepbox.vision.transforms.autoaugment import *  # noqa: F401,F403
from deepbox.vision.transforms.autoaugment import __all__ as _aug_all
from deepbox.vision.transforms.transforms import *  # noqa: F401,F403
from deepbox.vision.transforms.transforms import __all__ as _all

__all__ = ["functional", *_all, *_aug_all]

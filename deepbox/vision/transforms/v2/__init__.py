"""``transforms.v2``: torchvision's second transforms namespace, with the same classes and functions.

deepbox's transforms already take PIL images, tensors and arrays alike, so v2 is the same API
under the name newer code imports (``from torchvision.transforms import v2``).
"""
from deepbox.vision.transforms import *  # noqa: F401,F403
from deepbox.vision.transforms import __all__ as _all
from deepbox.vision.transforms import functional  # noqa: F401

__all__ = list(_all)

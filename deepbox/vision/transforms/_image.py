"""The three kinds of image (a tensor ``(..., C, H, W)``, a NumPy array ``(H, W[, C])``, a PIL image) and
the ``(..., C, H, W)`` array view that the geometry (``functional``) and colour (``color``) functions work on."""
from __future__ import annotations

import numpy as np

from deepbox.tensor import Tensor, _make


def _is_pil(img) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(img, Image.Image)


def _check_image(img) -> str:
    if isinstance(img, Tensor):
        if img._data.ndim < 2:
            raise TypeError(f"expected a tensor image of shape (..., C, H, W) or (H, W), got shape "
                            f"{tuple(img.shape)}")
        return "tensor"
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise TypeError(f"expected a NumPy image of shape (H, W) or (H, W, C), got shape {img.shape}")
        return "array"
    if _is_pil(img):
        return "pil"
    raise TypeError(f"img should be a PIL Image, a deepbox Tensor (..., C, H, W) or a NumPy array (H, W[, C]); "
                    f"got {type(img).__name__}")


def _to_chw(img):
    """The image as an array ``(..., C, H, W)`` and what ``_from_chw`` needs to undo it."""
    kind = _check_image(img)
    if kind == "tensor":
        a = img._data
        return (a[None] if a.ndim == 2 else a), (kind, a.ndim)
    a = img
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), (kind, a.ndim)


def _from_chw(a, meta):
    kind, ndim = meta
    if kind == "tensor":
        return _make(np.ascontiguousarray(a[0] if ndim == 2 else a))
    return np.ascontiguousarray(a[0] if ndim == 2 else a.transpose(1, 2, 0))

"""Colour and tone adjustments (torchvision's ``adjust_*``, ``invert``, ``posterize``, ``solarize``,
``autocontrast``, ``equalize``, ``gaussian_blur``).

On tensors and arrays these follow torchvision's tensor formulas, in the image's own range
(``bound`` = 1 for float images, 255 for uint8): most are a *blend* ``r * img + (1 - r) * other``
clamped to [0, bound] with a degenerate image (black for brightness, the mean grey for contrast,
the greyscale image for saturation, a 3x3-smoothed image for sharpness); integer results are
truncated, as torchvision's ``.to(uint8)`` does. PIL images go through PIL's ``ImageEnhance`` and
``ImageOps``, as torchvision does for them.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepbox.vision.transforms._image import _from_chw, _is_pil, _to_chw

__all__ = ["adjust_brightness", "adjust_contrast", "adjust_gamma", "adjust_hue", "adjust_saturation",
           "adjust_sharpness", "autocontrast", "equalize", "gaussian_blur", "invert", "posterize", "solarize"]


def _bound(a: np.ndarray) -> float:
    return 1.0 if a.dtype.kind == "f" else float(np.iinfo(a.dtype).max)


def _blend(a: np.ndarray, b, ratio: float) -> np.ndarray:
    bound = _bound(a)
    out = np.clip(ratio * a.astype(np.float32 if a.dtype.kind != "f" else a.dtype) + (1.0 - ratio) * b, 0, bound)
    return out.astype(a.dtype)  # truncation for integer images, as torchvision's .to(dtype)


def _check_factor(value: float, name: str) -> None:
    if value < 0:
        raise ValueError(f"{name} ({value}) is not non-negative.")


def _channels(a: np.ndarray) -> int:
    return a.shape[-3]


def _enhance(img, enhancer: str, factor: float):
    from PIL import ImageEnhance

    return getattr(ImageEnhance, enhancer)(img).enhance(factor)


def adjust_brightness(img, brightness_factor: float):
    """Blend with black: 0 gives black, 1 the original, 2 twice as bright."""
    _check_factor(brightness_factor, "brightness_factor")
    if _is_pil(img):
        return _enhance(img, "Brightness", brightness_factor)
    a, meta = _to_chw(img)
    return _from_chw(_blend(a, 0.0, brightness_factor), meta)


def _gray(a: np.ndarray) -> np.ndarray:
    if _channels(a) == 1:
        return a
    r, g, b = (a[..., k, :, :].astype(np.float32) if a.dtype.kind != "f" else a[..., k, :, :] for k in range(3))
    return (0.2989 * r + 0.587 * g + 0.114 * b).astype(a.dtype)[..., None, :, :]


def adjust_contrast(img, contrast_factor: float):
    """Blend with the image's mean grey level: 0 gives a flat grey image, 1 the original."""
    _check_factor(contrast_factor, "contrast_factor")
    if _is_pil(img):
        return _enhance(img, "Contrast", contrast_factor)
    a, meta = _to_chw(img)
    if _channels(a) not in (1, 3):
        raise TypeError(f"Input image tensor permitted channel values are [1, 3], but found {_channels(a)}")
    dt = a.dtype if a.dtype.kind == "f" else np.float32
    mean = _gray(a).astype(dt).mean(axis=(-3, -2, -1), keepdims=True)
    return _from_chw(_blend(a, mean, contrast_factor), meta)


def adjust_saturation(img, saturation_factor: float):
    """Blend with the greyscale image: 0 gives grey, 1 the original, 2 doubles the saturation."""
    _check_factor(saturation_factor, "saturation_factor")
    if _is_pil(img):
        return _enhance(img, "Color", saturation_factor)
    a, meta = _to_chw(img)
    if _channels(a) == 1:
        return img
    return _from_chw(_blend(a, _gray(a), saturation_factor), meta)


def _rgb2hsv(a: np.ndarray) -> np.ndarray:
    r, g, b = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
    maxc = a.max(axis=-3)
    minc = a.min(axis=-3)
    eqc = maxc == minc
    cr = maxc - minc
    s = cr / np.where(eqc, 1.0, maxc)
    div = np.where(eqc, 1.0, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return np.stack([h, s, maxc], axis=-3)


def _hsv2rgb(a: np.ndarray) -> np.ndarray:
    h, s, v = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int32) % 6
    p = np.clip(v * (1.0 - s), 0.0, 1.0)
    q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    # the six sextants of the hue circle, each a permutation of (v, t, p) / (q, v, p) ...
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-3)


def adjust_hue(img, hue_factor: float):
    """Rotate the hue by ``hue_factor`` turns (in [-0.5, 0.5]) in HSV space."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    if _is_pil(img):
        from PIL import Image

        mode = img.mode
        if mode in ("L", "1", "I", "F"):
            return img
        h, s, v = img.convert("HSV").split()
        hv = np.array(h, dtype=np.uint8)
        with np.errstate(over="ignore"):
            hv += np.uint8(int(hue_factor * 255) % 256)  # wraps around, as the hue circle does
        return Image.merge("HSV", (Image.fromarray(hv, "L"), s, v)).convert(mode)
    a, meta = _to_chw(img)
    if _channels(a) == 1:
        return img
    if _channels(a) != 3:
        raise TypeError(f"Input image tensor permitted channel values are [1, 3], but found {_channels(a)}")
    x = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a
    hsv = _rgb2hsv(x)
    hsv[..., 0, :, :] = np.fmod(hsv[..., 0, :, :] + hue_factor, 1.0)
    hsv[..., 0, :, :] = np.where(hsv[..., 0, :, :] < 0, hsv[..., 0, :, :] + 1.0, hsv[..., 0, :, :])
    out = _hsv2rgb(hsv)
    if a.dtype == np.uint8:
        out = (out * 255.0).astype(np.uint8)
    return _from_chw(out.astype(a.dtype, copy=False), meta)


def adjust_gamma(img, gamma: float, gain: float = 1.0):
    """``gain * img ** gamma`` on the image scaled to [0, 1]."""
    if gamma < 0:
        raise ValueError("Gamma should be a non-negative real number")
    if _is_pil(img):
        mode = img.mode
        rgb = img.convert("RGB")
        table = [int((255 + 1 - 1e-3) * gain * pow(ele / 255.0, gamma)) for ele in range(256)] * 3
        return rgb.point(table).convert(mode)
    a, meta = _to_chw(img)
    x = a.astype(np.float32) / _bound(a) if a.dtype.kind != "f" else a
    out = np.clip(gain * x ** gamma, 0, 1)
    if a.dtype.kind != "f":
        out = (out * (_bound(a) + 1.0 - 1e-3)).astype(a.dtype)
    return _from_chw(out.astype(a.dtype, copy=False), meta)


def invert(img):
    """``bound - img``: a negative."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.invert(img)
    a, meta = _to_chw(img)
    return _from_chw((_bound(a) - a).astype(a.dtype), meta)


def posterize(img, bits: int):
    """Keep the ``bits`` highest bits of each uint8 value."""
    if not 0 <= bits <= 8:
        raise ValueError(f"The number if bits should be between 0 and 8. Got {bits}")
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.posterize(img, bits)
    a, meta = _to_chw(img)
    if a.dtype != np.uint8:
        raise TypeError(f"Only torch.uint8 image tensors are supported, but found {a.dtype}")
    mask = np.uint8((0xFF << (8 - bits)) & 0xFF)
    return _from_chw(a & mask, meta)


def solarize(img, threshold: float):
    """Invert every value at or above ``threshold``."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.solarize(img, threshold)
    a, meta = _to_chw(img)
    if threshold > _bound(a):
        raise TypeError("Threshold should be less than bound of img.")
    return _from_chw(np.where(a >= threshold, (_bound(a) - a).astype(a.dtype), a), meta)


def adjust_sharpness(img, sharpness_factor: float):
    """Blend with a 3x3-smoothed copy (kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, borders unsmoothed)."""
    _check_factor(sharpness_factor, "sharpness_factor")
    if _is_pil(img):
        return _enhance(img, "Sharpness", sharpness_factor)
    a, meta = _to_chw(img)
    if a.shape[-1] <= 2 or a.shape[-2] <= 2:
        return img
    x = a.astype(np.float32) if a.dtype.kind != "f" else a
    k = np.ones((3, 3), dtype=x.dtype)
    k[1, 1] = 5.0
    k /= k.sum()
    H, W = x.shape[-2:]
    smooth = sum(k[i, j] * x[..., i:H - 2 + i, j:W - 2 + j] for i in range(3) for j in range(3))
    if a.dtype.kind != "f":
        smooth = np.round(smooth)
    degenerate = x.copy()
    degenerate[..., 1:-1, 1:-1] = smooth.astype(x.dtype)
    if a.dtype.kind != "f":
        degenerate = degenerate.astype(a.dtype).astype(np.float32)
    return _from_chw(_blend(a, degenerate, sharpness_factor), meta)


def autocontrast(img):
    """Stretch each channel so that its darkest value becomes 0 and its brightest the bound."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.autocontrast(img)
    a, meta = _to_chw(img)
    bound = _bound(a)
    dt = a.dtype if a.dtype.kind == "f" else np.float32
    lo = a.min(axis=(-2, -1), keepdims=True).astype(dt)
    hi = a.max(axis=(-2, -1), keepdims=True).astype(dt)
    with np.errstate(divide="ignore"):
        scale = bound / (hi - lo)
    flat = ~np.isfinite(scale)
    lo = np.where(flat, 0, lo)
    scale = np.where(flat, 1, scale)
    return _from_chw(np.clip((a - lo) * scale, 0, bound).astype(a.dtype), meta)


def _equalize_channel(c: np.ndarray) -> np.ndarray:
    hist = np.bincount(c.ravel(), minlength=256)
    nonzero = hist[hist != 0]
    step = int(nonzero[:-1].sum()) // 255
    if step == 0:
        return c
    lut = (np.cumsum(hist) + step // 2) // step
    lut = np.clip(np.concatenate([[0], lut[:-1]]), 0, 255).astype(np.uint8)
    return lut[c]


def equalize(img):
    """Histogram equalisation of each uint8 channel (PIL's algorithm)."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.equalize(img)
    a, meta = _to_chw(img)
    if a.dtype != np.uint8:
        raise TypeError(f"Only torch.uint8 image tensors are supported, but found {a.dtype}")
    flat = a.reshape(-1, a.shape[-2], a.shape[-1])
    out = np.stack([_equalize_channel(c) for c in flat]).reshape(a.shape)
    return _from_chw(out, meta)


def _gaussian_kernel1d(ksize: int, sigma: float) -> np.ndarray:
    half = (ksize - 1) * 0.5
    x = np.linspace(-half, half, ksize, dtype=np.float32)
    pdf = np.exp(-0.5 * (x / sigma) ** 2)
    return pdf / pdf.sum()


def gaussian_blur(img, kernel_size, sigma: Sequence[float] | float | None = None):
    """Blur with a Gaussian kernel of odd ``kernel_size`` (int or (kx, ky)); reflect padding at the edges.

    ``sigma`` defaults to ``0.3 * ((k - 1) * 0.5 - 1) + 0.8`` per axis (OpenCV's rule, as torchvision).
    """
    if isinstance(kernel_size, int):
        kernel_size = [kernel_size, kernel_size]
    kernel_size = list(kernel_size)
    if len(kernel_size) != 2 or any(k <= 0 or k % 2 == 0 for k in kernel_size):
        raise ValueError(f"kernel_size should have odd and positive integers. Got {kernel_size}")
    if sigma is None:
        sigma = [k * 0.15 + 0.35 for k in kernel_size]
    elif isinstance(sigma, (int, float)):
        sigma = [float(sigma), float(sigma)]
    sigma = list(sigma)
    if len(sigma) == 1:
        sigma = [sigma[0], sigma[0]]
    if len(sigma) != 2 or any(s <= 0 for s in sigma):
        raise ValueError(f"sigma should have positive values. Got {sigma}")
    pil = _is_pil(img)
    if pil:
        from PIL import Image

        mode = img.mode
        arr = np.asarray(img)
        a, meta = _to_chw(arr)
    else:
        a, meta = _to_chw(img)
    kx = _gaussian_kernel1d(kernel_size[0], sigma[0])
    ky = _gaussian_kernel1d(kernel_size[1], sigma[1])
    x = a.astype(np.float32) if a.dtype.kind != "f" else a
    px, py = kernel_size[0] // 2, kernel_size[1] // 2
    pad = [(0, 0)] * (x.ndim - 2) + [(py, py), (px, px)]
    xp_ = np.pad(x, pad, mode="reflect")
    H, W = x.shape[-2:]
    tmp = sum(ky[i] * xp_[..., i:i + H, :] for i in range(kernel_size[1]))  # separable: rows, then columns
    out = sum(kx[j] * tmp[..., :, j:j + W] for j in range(kernel_size[0]))
    if a.dtype.kind != "f":
        out = np.round(out)
    out = out.astype(a.dtype)
    res = _from_chw(out, meta)
    if pil:
        return Image.fromarray(res, mode)
    return res


"""Image transforms as functions (torchvision's ``transforms.functional``).

Three kinds of image are accepted:

* deepbox tensors, ``(..., C, H, W)`` (or ``(H, W)``), as torchvision's tensors;
* NumPy arrays in the layout ``numpy.asarray(pil_image)`` gives: ``(H, W)`` or ``(H, W, C)``;
* PIL images, transformed with PIL's own operations.

The output has the kind of the input. On tensors and arrays the geometry is pure NumPy:
resizing by separable weight matrices (PIL's triangle filter, widened when shrinking with
``antialias``), rotations and affine maps by sampling the input at the inverse-mapped
output pixel centres (nearest or bilinear), with torchvision's conventions for centres,
angles (``rotate``: counter-clockwise; ``affine``: clockwise) and fills. Integer images are
computed in float32 and rounded back.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from enum import Enum

import numpy as np

from deepbox import backend
from deepbox.tensor import Tensor, _make
from deepbox.vision.transforms._image import _check_image, _from_chw, _is_pil, _to_chw  # noqa: F401

__all__ = [
    "InterpolationMode", "get_dimensions", "get_image_size", "get_image_num_channels", "to_tensor", "pil_to_tensor",
    "to_pil_image", "convert_image_dtype", "normalize", "resize", "pad", "crop", "center_crop", "resized_crop",
    "hflip", "vflip", "rotate", "affine", "erase", "rgb_to_grayscale", "perspective", "elastic_transform",
]


class InterpolationMode(Enum):
    """How pixels between samples are computed (torchvision's names)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _interp(mode) -> InterpolationMode:
    if isinstance(mode, InterpolationMode):
        return mode
    if isinstance(mode, str):
        try:
            return InterpolationMode(mode.lower())
        except ValueError:
            pass
    pil_codes = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
                 4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}
    if isinstance(mode, int) and mode in pil_codes:
        return pil_codes[mode]
    raise ValueError(f"unknown interpolation {mode!r}; expected an InterpolationMode such as "
                     "InterpolationMode.BILINEAR or one of " + ", ".join(m.value for m in InterpolationMode))


def _pil_resample(mode: InterpolationMode):
    from PIL import Image

    r = Image.Resampling
    return {InterpolationMode.NEAREST: r.NEAREST, InterpolationMode.NEAREST_EXACT: r.NEAREST,
            InterpolationMode.BILINEAR: r.BILINEAR, InterpolationMode.BICUBIC: r.BICUBIC,
            InterpolationMode.BOX: r.BOX, InterpolationMode.HAMMING: r.HAMMING,
            InterpolationMode.LANCZOS: r.LANCZOS}[mode]


# --------------------------------------------------------------------------- image kinds


def _cast_back(out: np.ndarray, dtype) -> np.ndarray:
    """A float result in the input's dtype: integers rounded and clipped, floats cast."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.round(out), info.min, info.max).astype(dtype)
    if dtype.kind == "b":
        return out > 0.5
    return out.astype(dtype, copy=False)


def _float(a: np.ndarray) -> np.ndarray:
    return a if a.dtype.kind == "f" else a.astype(np.float32)


def get_dimensions(img) -> list[int]:
    """``[channels, height, width]`` of an image."""
    if _check_image(img) == "pil":
        return [len(img.getbands()), img.height, img.width]
    a, _ = _to_chw(img)
    return [a.shape[-3], a.shape[-2], a.shape[-1]]


def get_image_size(img) -> list[int]:
    """``[width, height]`` of an image."""
    _, h, w = get_dimensions(img)
    return [w, h]


def get_image_num_channels(img) -> int:
    return get_dimensions(img)[0]


# --------------------------------------------------------------------------- conversions


def to_tensor(pic) -> Tensor:
    """A PIL image or NumPy array (H, W[, C]) as a tensor (C, H, W); uint8 values are scaled to [0, 1].

    Other dtypes keep their values and dtype (torchvision's ``to_tensor``).
    """
    if isinstance(pic, Tensor) or not (_is_pil(pic) or isinstance(pic, np.ndarray)):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic)}")
    if isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2 or 3 dimensional. Got {pic.ndim} dimensions.")
        a = pic[:, :, None] if pic.ndim == 2 else pic
        if a.dtype == np.uint16 or a.dtype == np.uint32:
            a = a.astype(np.int64 if a.dtype == np.uint32 else np.int32)
        out = np.ascontiguousarray(a.transpose(2, 0, 1))
    else:
        out = _pil_array(pic).transpose(2, 0, 1)
    if out.dtype == np.uint8:
        fdt = backend.default_float_np()
        return _make(out.astype(fdt) / fdt.type(255))
    return _make(np.ascontiguousarray(out))


def _pil_array(pic) -> np.ndarray:
    """A PIL image as an (H, W, C) array, torchvision's dtype choices per mode."""
    if pic.mode == "1":
        a = 255 * np.asarray(pic, dtype=np.uint8)
    elif pic.mode == "I;16":
        a = np.asarray(pic, dtype=np.int32)
    else:
        a = np.asarray(pic)
    if a.ndim == 2:
        a = a[:, :, None]
    return a


def pil_to_tensor(pic) -> Tensor:
    """A PIL image as a tensor (C, H, W) of its own dtype, without scaling."""
    if not _is_pil(pic):
        raise TypeError(f"pic should be PIL Image. Got {type(pic)}")
    return _make(np.ascontiguousarray(_pil_array(pic).transpose(2, 0, 1)))


def to_pil_image(pic, mode: str | None = None):
    """A tensor (C, H, W) or array (H, W[, C]) as a PIL image; float values in [0, 1] become uint8."""
    from PIL import Image

    if isinstance(pic, Tensor):
        a = pic._data
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise ValueError(f"pic should be 2/3 dimensional. Got {a.ndim} dimensions.")
        a = a.transpose(1, 2, 0)
    elif isinstance(pic, np.ndarray):
        a = pic[:, :, None] if pic.ndim == 2 else pic
        if a.ndim != 3:
            raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
    else:
        raise TypeError(f"pic should be Tensor or ndarray. Got {type(pic)}.")
    if a.dtype.kind == "f" and mode != "F":
        a = (a * 255).astype(np.uint8)  # torchvision truncates, it does not round
    if a.shape[2] == 1:
        a = a[:, :, 0]
        if mode is None:
            mode = {np.dtype(np.uint8): "L", np.dtype(np.int16): "I;16", np.dtype(np.int32): "I",
                    np.dtype(np.float32): "F"}.get(a.dtype)
    img = Image.fromarray(np.ascontiguousarray(a))
    return img.convert(mode) if mode is not None and img.mode != mode else img


def convert_image_dtype(image: Tensor, dtype=None) -> Tensor:
    """Convert a tensor image's dtype, rescaling values (uint8 255 <-> float 1.0), torchvision's rule."""
    if not isinstance(image, Tensor):
        raise TypeError(f"Input img should be Tensor Image, got {type(image).__name__}")
    dt = backend.to_numpy_dtype(dtype if dtype is not None else backend.get_default_dtype())
    a = image._data
    if a.dtype == dt:
        return image
    if a.dtype.kind == "f":
        if dt.kind == "f":
            return _make(a.astype(dt))
        if (a.dtype == np.float32 and dt in (np.int32, np.int64)) or (a.dtype == np.float64 and dt == np.int64):
            raise RuntimeError(f"The cast from {a.dtype} to {dt} cannot be performed safely.")
        eps = 1e-3
        max_val = float(np.iinfo(dt).max) if dt.kind in "iu" else 1.0
        return _make((a * (max_val + 1.0 - eps)).astype(dt))
    in_max = float(np.iinfo(a.dtype).max) if a.dtype.kind in "iu" else 1.0
    if dt.kind == "f":
        return _make((a.astype(dt) / dt.type(in_max)).astype(dt))
    out_max = float(np.iinfo(dt).max)
    if in_max > out_max:
        factor = int((in_max + 1) // (out_max + 1))
        return _make((a // factor).astype(dt))
    factor = int((out_max + 1) // (in_max + 1))
    return _make(a.astype(dt) * factor)


# --------------------------------------------------------------------------- normalize


def normalize(tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
    """``(image - mean) / std`` per channel of a float image (tensor (..., C, H, W) or array (H, W, C))."""
    kind = _check_image(tensor)
    if kind == "pil":
        raise TypeError("img should be Tensor Image (or a float NumPy array); convert it with ToTensor() first")
    a, meta = _to_chw(tensor)
    if a.dtype.kind != "f":
        raise TypeError(f"Input tensor should be a float tensor. Got {a.dtype}.")
    if kind == "tensor" and tensor._data.ndim < 3:
        raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                         f"{tuple(tensor.shape)}")
    mean_a = np.asarray(mean, dtype=a.dtype).reshape(-1)
    std_a = np.asarray(std, dtype=a.dtype).reshape(-1)
    if (std_a == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {a.dtype}, leading to division by zero.")
    c = a.shape[-3]
    if mean_a.size not in (1, c) or std_a.size not in (1, c):
        raise ValueError(f"Normalize got {mean_a.size} means and {std_a.size} stds for an image with {c} channels")
    out = (a - mean_a[:, None, None]) / std_a[:, None, None]
    if inplace:
        if kind == "tensor":
            tensor._data[...] = out.reshape(tensor._data.shape)
            return tensor
        tensor[...] = _from_chw(out, meta)
        return tensor
    return _from_chw(out, meta)


# --------------------------------------------------------------------------- resize


def _output_size(h: int, w: int, size, max_size) -> tuple[int, int]:
    if isinstance(size, numbers.Integral) or (isinstance(size, Sequence) and len(size) == 1):
        requested = int(size if isinstance(size, numbers.Integral) else size[0])
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None:
            if max_size <= requested:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for the "
                                 f"smaller edge size = {size}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        return new_h, new_w
    if size is None and max_size is not None:
        scale = max_size / max(h, w)
        return int(h * scale), int(w * scale)
    if isinstance(size, Sequence) and len(size) == 2:
        if max_size is not None:
            raise ValueError("max_size should only be passed if size specifies the length of the smaller edge")
        return int(size[0]), int(size[1])
    raise TypeError(f"size should be an int or a sequence of one or two ints, got {size!r}")


def _triangle_weights(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    """The (out, in) matrix of bilinear weights: PIL's triangle filter, widened by the scale when
    shrinking with ``antialias``, each row normalised over the pixels inside the image."""
    scale = in_size / out_size
    stretch = max(scale, 1.0) if antialias else 1.0
    centres = (np.arange(out_size) + 0.5) * scale
    d = (np.arange(in_size)[None, :] + 0.5 - centres[:, None]) / stretch
    w = np.clip(1.0 - np.abs(d), 0.0, None)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _resize_array(a: np.ndarray, oh: int, ow: int, mode: InterpolationMode, antialias: bool) -> np.ndarray:
    h, w = a.shape[-2:]
    if (oh, ow) == (h, w):
        return a.copy()
    if mode in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT):
        off = 0.5 if mode is InterpolationMode.NEAREST_EXACT else 0.0
        rows = np.minimum(np.floor((np.arange(oh) + off) * (h / oh)).astype(np.int64), h - 1)
        cols = np.minimum(np.floor((np.arange(ow) + off) * (w / ow)).astype(np.int64), w - 1)
        return a[..., rows[:, None], cols[None, :]]
    if mode is not InterpolationMode.BILINEAR:
        raise NotImplementedError(f"resizing tensors and arrays supports nearest and bilinear interpolation, not "
                                  f"{mode.value}; use a PIL image for {mode.value}")
    wh = _triangle_weights(h, oh, antialias)
    ww = _triangle_weights(w, ow, antialias)
    out = np.matmul(np.matmul(wh, _float(a)), ww.T)
    return _cast_back(out, a.dtype)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size: int | None = None,
           antialias: bool | None = True):
    """Resize to ``size``: ``(h, w)``, or an int that the smaller edge is matched to (keeping the aspect ratio).

    Args:
        img: PIL image, tensor (..., C, H, W) or array (H, W[, C]).
        size: ``(h, w)`` or the smaller edge's new length.
        interpolation: ``InterpolationMode`` (tensors and arrays: NEAREST, NEAREST_EXACT, BILINEAR).
        max_size: the longer edge's limit when ``size`` is an int.
        antialias: widen the bilinear filter when shrinking (PIL always does).
    """
    mode = _interp(interpolation)
    c, h, w = get_dimensions(img)
    oh, ow = _output_size(h, w, size, max_size)
    if _is_pil(img):
        if (oh, ow) == (h, w):
            return img.copy()
        return img.resize((ow, oh), _pil_resample(mode))
    a, meta = _to_chw(img)
    return _from_chw(_resize_array(a, oh, ow, mode, bool(antialias)), meta)


# --------------------------------------------------------------------------- pad, crop, flip


def _parse_padding(padding) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from an int or a sequence of 1, 2 or 4 ints."""
    if isinstance(padding, numbers.Integral):
        p = int(padding)
        return p, p, p, p
    if isinstance(padding, Sequence) and len(padding) in (1, 2, 4) and all(
            isinstance(x, numbers.Integral) for x in padding):
        if len(padding) == 1:
            return (int(padding[0]),) * 4
        if len(padding) == 2:
            return int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])
        return tuple(int(x) for x in padding)
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element sequence of ints, not {padding!r}")


def _fill_values(fill, channels: int, dtype) -> np.ndarray:
    f = np.asarray(0 if fill is None else fill, dtype=np.float64).reshape(-1)
    if f.size not in (1, channels):
        raise ValueError(f"fill has {f.size} values for an image with {channels} channels; expected 1 or "
                         f"{channels}")
    return np.broadcast_to(f, (channels,)).astype(dtype)


def pad(img, padding, fill=0, padding_mode: str = "constant"):
    """Pad the borders: ``padding`` is an int, (left/right, top/bottom) or (left, top, right, bottom).

    ``padding_mode``: ``constant`` (with ``fill``), ``edge``, ``reflect`` or ``symmetric``.
    """
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, got {padding_mode!r}")
    left, top, right, bottom = _parse_padding(padding)
    if _is_pil(img):
        from PIL import Image

        arr = np.asarray(img)
        hwc = arr if arr.ndim == 3 else arr[:, :, None]
        out = _pad_chw(hwc.transpose(2, 0, 1), left, top, right, bottom, fill, padding_mode).transpose(1, 2, 0)
        res = Image.fromarray(np.ascontiguousarray(out if arr.ndim == 3 else out[:, :, 0]))
        if img.mode == "P":
            res.putpalette(img.getpalette())
        return res if res.mode == img.mode or img.mode == "P" else res.convert(img.mode)
    a, meta = _to_chw(img)
    return _from_chw(_pad_chw(a, left, top, right, bottom, fill, padding_mode), meta)


def _pad_chw(a, left, top, right, bottom, fill, mode):
    if min(left, top, right, bottom) < 0:
        # negative padding crops, as in torchvision
        h, w = a.shape[-2:]
        a = a[..., max(-top, 0): h - max(-bottom, 0), max(-left, 0): w - max(-right, 0)]
        left, top, right, bottom = max(left, 0), max(top, 0), max(right, 0), max(bottom, 0)
    widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
    if mode != "constant":
        return np.pad(a, widths, mode=mode)
    c = a.shape[-3]
    f = _fill_values(fill, c, a.dtype)
    out = np.empty(a.shape[:-2] + (a.shape[-2] + top + bottom, a.shape[-1] + left + right), dtype=a.dtype)
    out[...] = f[:, None, None]
    out[..., top: top + a.shape[-2], left: left + a.shape[-1]] = a
    return out


def crop(img, top: int, left: int, height: int, width: int):
    """The ``height x width`` region at ``(top, left)``; parts outside the image are zero."""
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    a, meta = _to_chw(img)
    h, w = a.shape[-2:]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        pads = (max(-left, 0), max(-top, 0), max(right - w, 0), max(bottom - h, 0))
        a = _pad_chw(a[..., max(top, 0): min(bottom, h), max(left, 0): min(right, w)], *pads, 0, "constant")
        return _from_chw(a, meta)
    return _from_chw(a[..., top:bottom, left:right], meta)


def _setup_size(size, what: str = "size") -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"Please provide only two dimensions (h, w) for {what}, got {size!r}")


def center_crop(img, output_size):
    """The central ``output_size`` region (zero-padded first if the image is smaller)."""
    th, tw = _setup_size(output_size, "output_size")
    _, h, w = get_dimensions(img)
    if tw > w or th > h:
        padding = [(tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                   (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0]
        img = pad(img, padding, fill=0)
        _, h, w = get_dimensions(img)
        if tw == w and th == h:
            return img
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return crop(img, top, left, th, tw)


def resized_crop(img, top: int, left: int, height: int, width: int, size,
                 interpolation=InterpolationMode.BILINEAR, antialias: bool | None = True):
    """``crop`` then ``resize`` to ``size``."""
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def hflip(img):
    """Mirror left to right."""
    if _is_pil(img):
        from PIL import Image

        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a, meta = _to_chw(img)
    return _from_chw(a[..., ::-1], meta)


def vflip(img):
    """Mirror top to bottom."""
    if _is_pil(img):
        from PIL import Image

        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    a, meta = _to_chw(img)
    return _from_chw(a[..., ::-1, :], meta)


# --------------------------------------------------------------------------- rotations and affine maps


def _get_inverse_affine_matrix(center, angle: float, translate, scale: float, shear) -> list[float]:
    """The matrix that maps output coordinates to input ones (torchvision's derivation).

    The forward map is ``M = T * C * RotateScaleShear * C^-1`` (T translation, C the centre),
    with ``RotateScaleShear = R(a) S(s) SHy(sy) SHx(sx)`` expanded below; its inverse is
    ``C * RSS^-1 * C^-1 * T^-1``.
    """
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    matrix = [d, -b, 0.0, -c, a, 0.0]
    matrix = [x / scale for x in matrix]
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty)
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty)
    matrix[2] += cx
    matrix[5] += cy
    return matrix


def _affine_output_size(matrix, w: int, h: int) -> tuple[int, int]:
    pts = np.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0], [0.5 * w, 0.5 * h, 1.0],
                    [0.5 * w, -0.5 * h, 1.0]])
    theta = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    new = pts @ theta.T
    tol = 1e-4
    cmax = np.ceil(np.trunc(new.max(0) / tol) * tol)
    cmin = np.floor(np.trunc(new.min(0) / tol) * tol)
    size = cmax - cmin
    return int(size[0]), int(size[1])


def _sample_affine(a: np.ndarray, matrix, oh: int, ow: int, mode: InterpolationMode, fill) -> np.ndarray:
    """Sample ``a`` (..., C, H, W) at the inverse-mapped centres of an ``oh x ow`` output.

    ``matrix`` maps output coordinates relative to the output centre to input coordinates
    relative to the input centre (torchvision's tensor convention). Samples outside the
    input are zero, then blended with ``fill`` by the sampled coverage (as torchvision does).
    """
    h, w = a.shape[-2:]
    m = np.asarray(matrix, dtype=np.float64)
    ys, xs = np.meshgrid(np.arange(oh) + 0.5 - oh * 0.5, np.arange(ow) + 0.5 - ow * 0.5, indexing="ij")
    u = m[0] * xs + m[1] * ys + m[2] + w * 0.5 - 0.5
    v = m[3] * xs + m[4] * ys + m[5] + h * 0.5 - 0.5
    return _sample_at(a, u, v, mode, fill)


def _sample_at(a: np.ndarray, u: np.ndarray, v: np.ndarray, mode: InterpolationMode, fill) -> np.ndarray:
    """Sample ``a`` (..., C, H, W) at column ``u``, row ``v`` (two (oh, ow) arrays; pixel centres at whole
    numbers), as ``grid_sample`` with zero padding; with a ``fill``, blended with it by the sampled
    coverage (torchvision's convention for affine, perspective and elastic warps)."""
    h, w = a.shape[-2:]
    oh, ow = u.shape
    src = _float(a)
    if mode in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT):
        ui, vi = np.rint(u).astype(np.int64), np.rint(v).astype(np.int64)
        inside = (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
        out = src[..., np.clip(vi, 0, h - 1), np.clip(ui, 0, w - 1)] * inside
        cover = inside.astype(src.dtype)
    elif mode is InterpolationMode.BILINEAR:
        u0, v0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        fu, fv = (u - u0).astype(src.dtype), (v - v0).astype(src.dtype)
        out = np.zeros(a.shape[:-2] + (oh, ow), dtype=src.dtype)
        cover = np.zeros((oh, ow), dtype=src.dtype)
        for dv, wv in ((0, 1 - fv), (1, fv)):
            for du, wu in ((0, 1 - fu), (1, fu)):
                uu, vv = u0 + du, v0 + dv
                ok = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
                wt = wu * wv * ok
                out += src[..., np.clip(vv, 0, h - 1), np.clip(uu, 0, w - 1)] * wt
                cover += wt
    else:
        raise NotImplementedError(f"warps of tensors and arrays support nearest and bilinear "
                                  f"interpolation, not {mode.value}; use a PIL image for {mode.value}")
    if fill is not None:
        f = _fill_values(fill, a.shape[-3], src.dtype)[:, None, None]
        if mode is InterpolationMode.BILINEAR:
            out = out * cover + (1.0 - cover) * f
        else:
            out = np.where(cover < 0.5, f, out)
    return _cast_back(out, a.dtype)


def _pil_fill(img, fill):
    if fill is None:
        return None
    bands = len(img.getbands())
    if isinstance(fill, numbers.Number):
        return fill if bands == 1 else tuple([fill] * bands)
    fill = tuple(fill)
    if len(fill) == 1:
        return fill[0] if bands == 1 else fill * bands
    if len(fill) != bands:
        raise ValueError(f"fill has {len(fill)} values for an image with {bands} bands")
    return fill if bands > 1 else fill[0]


def rotate(img, angle: float, interpolation=InterpolationMode.NEAREST, expand: bool = False, center=None,
           fill=None):
    """Rotate counter-clockwise by ``angle`` degrees about ``center`` (default: the image centre).

    Args:
        expand: grow the output to hold the whole rotated image.
        center: ``(x, y)`` in pixel coordinates.
        fill: the value for pixels that come from outside the image (default 0).
    """
    mode = _interp(interpolation)
    if _is_pil(img):
        return img.rotate(angle, _pil_resample(mode), expand, center, fillcolor=_pil_fill(img, fill))
    a, meta = _to_chw(img)
    h, w = a.shape[-2:]
    center_f = [0.0, 0.0]
    if center is not None:
        center_f = [1.0 * (c - s * 0.5) for c, s in zip(center, [w, h])]
    matrix = _get_inverse_affine_matrix(center_f, -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    ow, oh = _affine_output_size(matrix, w, h) if expand else (w, h)
    return _from_chw(_sample_affine(a, matrix, oh, ow, mode, fill), meta)


def affine(img, angle: float, translate: Sequence[int], scale: float, shear, interpolation=InterpolationMode.NEAREST,
           fill=None, center=None):
    """Rotate (clockwise, as torchvision's ``affine``), scale, shear and translate about the centre.

    Args:
        angle: degrees, clockwise.
        translate: ``(tx, ty)`` pixels (right, down).
        scale: the zoom factor.
        shear: degrees; a number (x only) or ``(sx, sy)``.
        fill: the value for pixels from outside the image.
        center: ``(x, y)`` in pixel coordinates (default: the image centre).
    """
    mode = _interp(interpolation)
    if isinstance(shear, numbers.Number):
        shear = [float(shear), 0.0]
    shear = list(shear) + [0.0] * (2 - len(shear))
    if scale <= 0:
        raise ValueError(f"Argument scale should be positive, got {scale}")
    if not (isinstance(translate, Sequence) and len(translate) == 2):
        raise TypeError(f"Argument translate should be a sequence of length 2, got {translate!r}")
    c, h, w = get_dimensions(img)
    if _is_pil(img):
        from PIL import Image

        if center is None:
            center = [w * 0.5, h * 0.5]
        matrix = _get_inverse_affine_matrix(center, angle, translate, scale, shear)
        return img.transform((w, h), Image.Transform.AFFINE, matrix, _pil_resample(mode),
                             fillcolor=_pil_fill(img, fill))
    a, meta = _to_chw(img)
    center_f = [0.0, 0.0]
    if center is not None:
        center_f = [1.0 * (cc - s * 0.5) for cc, s in zip(center, [w, h])]
    matrix = _get_inverse_affine_matrix(center_f, angle, [1.0 * t for t in translate], scale, shear)
    return _from_chw(_sample_affine(a, matrix, h, w, mode, fill), meta)


# --------------------------------------------------------------------------- erase, grayscale


def erase(img, i: int, j: int, h: int, w: int, v, inplace: bool = False):
    """Set the ``h x w`` region at ``(i, j)`` to ``v`` (a number, one value per channel, or an array)."""
    kind = _check_image(img)
    if kind == "pil":
        raise TypeError("erase works on tensors and NumPy arrays, not PIL images; apply ToTensor() first")
    a, meta = _to_chw(img)
    target = a if inplace else a.copy()
    val = v._data if isinstance(v, Tensor) else np.asarray(v)
    if val.ndim == 1:
        val = val[:, None, None]
    target[..., i: i + h, j: j + w] = val
    if inplace:
        return img
    return _from_chw(target, meta)


def rgb_to_grayscale(img, num_output_channels: int = 1):
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` (torchvision's weights; integer images are truncated, as
    torchvision does for tensors), repeated to ``num_output_channels`` (1 or 3)."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels should be either 1 or 3, got {num_output_channels}")
    if _is_pil(img):
        out = img.convert("L")
        if num_output_channels == 3:
            from PIL import Image

            out = Image.merge("RGB", [out, out, out])
        return out
    a, meta = _to_chw(img)
    c = a.shape[-3]
    if c == 1:
        gray = a
    elif c == 3:
        r, g, b = (a[..., k, :, :].astype(np.float32) if a.dtype.kind != "f" else a[..., k, :, :] for k in range(3))
        gray = (0.2989 * r + 0.587 * g + 0.114 * b).astype(a.dtype)[..., None, :, :]
    else:
        raise TypeError(f"Input image tensor permitted channel values are [1, 3], but found {c}")
    if num_output_channels == 3:
        gray = np.concatenate([gray] * 3, axis=-3)
    return _from_chw(np.ascontiguousarray(gray), meta)


# colour and tone adjustments live in their own file; they are part of this namespace, as in torchvision
from deepbox.vision.transforms.color import *  # noqa: E402,F401,F403
from deepbox.vision.transforms.color import __all__ as _color_all  # noqa: E402

__all__ += _color_all


# --------------------------------------------------------------------------- perspective and elastic warps
def _get_perspective_coeffs(startpoints, endpoints) -> list[float]:
    """The 8 coefficients (a, b, c, d, e, f, g, h) of the homography that maps each end point back to its
    start point: x_in = (a x + b y + c) / (g x + h y + 1), y_in = (d x + e y + f) / (g x + h y + 1).

    Each of the four point pairs gives two linear equations in the coefficients; solved by least squares
    (exact for four points in general position), as torchvision does.
    """
    if len(startpoints) != 4 or len(endpoints) != 4:
        raise ValueError(f"Please provide only four corners, got {len(startpoints)} start and {len(endpoints)} end "
                         "points")
    rows, rhs = [], []
    for (ex, ey), (sx, sy) in zip(endpoints, startpoints):
        rows.append([ex, ey, 1.0, 0.0, 0.0, 0.0, -sx * ex, -sx * ey])
        rows.append([0.0, 0.0, 0.0, ex, ey, 1.0, -sy * ex, -sy * ey])
        rhs += [sx, sy]
    coeffs = np.linalg.lstsq(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64), rcond=None)[0]
    return [float(c) for c in coeffs]


def perspective(img, startpoints, endpoints, interpolation=InterpolationMode.BILINEAR, fill=None):
    """Warp the image so that the four ``startpoints`` (``[x, y]`` corners: top-left, top-right,
    bottom-right, bottom-left) move to ``endpoints``; the output keeps the input's size.

    Each output pixel centre (x + 0.5, y + 0.5) is mapped back through the homography
    (``_get_perspective_coeffs``) and the input is sampled there (nearest or bilinear), with
    ``fill`` for what comes from outside (0 when None), as torchvision's tensor path.
    """
    mode = _interp(interpolation)
    coeffs = _get_perspective_coeffs(startpoints, endpoints)
    if _is_pil(img):
        from PIL import Image

        return img.transform(img.size, Image.Transform.PERSPECTIVE, coeffs, _pil_resample(mode),
                             fillcolor=_pil_fill(img, fill))
    a, meta = _to_chw(img)
    h, w = a.shape[-2:]
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    ca, cb, cc, cd, ce, cf, cg, ch = coeffs
    denom = cg * xs + ch * ys + 1.0
    u = (ca * xs + cb * ys + cc) / denom - 0.5  # back to pixel indices (centres at integers)
    v = (cd * xs + ce * ys + cf) / denom - 0.5
    return _from_chw(_sample_at(a, u, v, mode, fill), meta)


def elastic_transform(img, displacement, interpolation=InterpolationMode.BILINEAR, fill=None):
    """Move every pixel by ``displacement``, a ``(1, H, W, 2)`` tensor of (dx, dy) offsets in the normalised
    coordinates of ``grid_sample`` (-1 and 1 are the image's outer edges), as torchvision: output pixel
    (i, j) is the input sampled at column j + dx·W/2, row i + dy·H/2."""
    mode = _interp(interpolation)
    if _is_pil(img):
        from PIL import Image

        return Image.fromarray(elastic_transform(np.asarray(img), displacement, mode, fill))
    a, meta = _to_chw(img)
    h, w = a.shape[-2:]
    d = displacement._data if isinstance(displacement, Tensor) else np.asarray(displacement)
    if d.shape != (1, h, w, 2):
        raise ValueError(f"displacement should have shape (1, {h}, {w}, 2) for an image of size {h}x{w}, got "
                         f"{tuple(d.shape)}")
    d = d.astype(np.float64)
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    return _from_chw(_sample_at(a, xs + d[0, ..., 0] * w / 2, ys + d[0, ..., 1] * h / 2, mode, fill), meta)

"""``deepbox.vision.io``: torchvision's image reading and writing — ``read_image``, ``decode_image``,
``write_png``, ``write_jpeg``, ``encode_png``, ``encode_jpeg`` and ``ImageReadMode`` — through Pillow.

Images come back as torchvision returns them: a uint8 tensor ``(C, H, W)``. A 16-bit image
(a 16-bit PNG) is *scaled* to 8 bits (``round(v / 257)``, so 65535 becomes 255) rather than
clipped, which is what Pillow's own conversion would do. A palette image becomes RGB (RGBA when
it has transparency); ``ImageReadMode`` converts to one, two, three or four channels.
"""
from __future__ import annotations

import enum
import io
import os

from deepbox import backend
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = ["ImageReadMode", "read_image", "decode_image", "read_file", "write_file", "encode_png", "encode_jpeg",
           "write_png", "write_jpeg", "decode_png", "decode_jpeg"]


class ImageReadMode(enum.Enum):
    """How many channels to read: as stored, gray, gray + alpha, RGB, RGB + alpha."""

    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4
    RGBA = 4


_MODE_BY_NAME = {"UNCHANGED": ImageReadMode.UNCHANGED, "GRAY": ImageReadMode.GRAY, "GRAY_ALPHA":
                 ImageReadMode.GRAY_ALPHA, "RGB": ImageReadMode.RGB, "RGB_ALPHA": ImageReadMode.RGB_ALPHA,
                 "RGBA": ImageReadMode.RGB_ALPHA}
_PIL_MODE = {ImageReadMode.GRAY: "L", ImageReadMode.GRAY_ALPHA: "LA", ImageReadMode.RGB: "RGB",
             ImageReadMode.RGB_ALPHA: "RGBA"}


def _mode(mode) -> ImageReadMode:
    if isinstance(mode, ImageReadMode):
        return mode
    if isinstance(mode, str) and mode.upper() in _MODE_BY_NAME:
        return _MODE_BY_NAME[mode.upper()]
    raise ValueError(f"mode must be an ImageReadMode or one of {sorted(_MODE_BY_NAME)}, got {mode!r}")


def read_file(path) -> Tensor:
    """The bytes of a file as a 1-D uint8 tensor."""
    with open(os.fspath(path), "rb") as f:
        data = f.read()
    return _make(xp.frombuffer(bytearray(data), dtype=xp.uint8))


def write_file(filename, data) -> None:
    """Write a 1-D uint8 tensor's bytes to a file."""
    arr = data._data if isinstance(data, Tensor) else xp.asarray(data)
    if arr.dtype != xp.uint8 or arr.ndim != 1:
        raise ValueError(f"write_file expects a 1-D uint8 tensor, got {arr.dtype} of shape {arr.shape}")
    with open(os.fspath(filename), "wb") as f:
        f.write(arr.tobytes())


def _eight_bit(img):
    """A Pillow image with 16- or 32-bit integer samples, scaled (not clipped) to an 8-bit 'L' image."""
    from PIL import Image

    a = xp.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
        scaled = (a.astype(xp.uint32) * 255 + 32767) // 65535  # round(v * 255 / 65535) = round(v / 257)
        return Image.fromarray(xp.clip(scaled, 0, 255).astype(xp.uint8), mode="L")
    if img.mode in ("I", "F"):
        return Image.fromarray(xp.clip(a, 0, 255).astype(xp.uint8), mode="L")
    return img


def _decode(data: bytes, mode, source: str) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    mode = _mode(mode)
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError) as e:
        raise RuntimeError(f"{source}: not a decodable image (PNG, JPEG, GIF, BMP, ...): {e}") from None
    img = _eight_bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    elif img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")
    if mode is not ImageReadMode.UNCHANGED and img.mode != _PIL_MODE[mode]:
        img = img.convert(_PIL_MODE[mode])
    a = xp.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    return _make(xp.ascontiguousarray(a.transpose(2, 0, 1)))


def decode_image(input, mode=ImageReadMode.UNCHANGED, apply_exif_orientation: bool = False) -> Tensor:
    """Decode an image from a 1-D uint8 tensor of its file's bytes (or a path) into a uint8 ``(C, H, W)`` tensor."""
    if isinstance(input, (str, os.PathLike)):
        return read_image(input, mode, apply_exif_orientation)
    arr = input._data if isinstance(input, Tensor) else xp.asarray(input)
    if arr.dtype != xp.uint8 or arr.ndim != 1:
        raise ValueError(f"decode_image expects a 1-D uint8 tensor of file bytes, got {arr.dtype} of shape "
                         f"{arr.shape}")
    return _decode(arr.tobytes(), mode, "decode_image")


decode_png = decode_image
decode_jpeg = decode_image


def read_image(path, mode=ImageReadMode.UNCHANGED, apply_exif_orientation: bool = False) -> Tensor:
    """Read a PNG/JPEG (or any format Pillow reads) into a uint8 ``(C, H, W)`` tensor."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return _decode(data, mode, path)


def _to_pil(input, who: str):
    from PIL import Image

    arr = input._data if isinstance(input, Tensor) else xp.asarray(input)
    if arr.dtype != xp.uint8:
        raise ValueError(f"{who}: the image must be a uint8 tensor, got {arr.dtype}")
    if arr.ndim != 3 or arr.shape[0] not in (1, 2, 3, 4):
        raise ValueError(f"{who}: the image must have shape (C, H, W) with 1-4 channels, got {arr.shape}")
    hwc = xp.ascontiguousarray(arr.transpose(1, 2, 0))
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[0]]
    return Image.fromarray(hwc[:, :, 0] if arr.shape[0] == 1 else hwc, mode=mode)


def encode_png(input, compression_level: int = 6) -> Tensor:
    """The PNG file bytes of a uint8 ``(C, H, W)`` image, as a 1-D uint8 tensor."""
    if not 0 <= compression_level <= 9:
        raise ValueError(f"compression_level must be between 0 and 9, got {compression_level}")
    buf = io.BytesIO()
    _to_pil(input, "encode_png").save(buf, format="PNG", compress_level=compression_level)
    return _make(xp.frombuffer(bytearray(buf.getvalue()), dtype=xp.uint8))


def encode_jpeg(input, quality: int = 75) -> Tensor:
    """The JPEG file bytes of a uint8 ``(C, H, W)`` image (1 or 3 channels), as a 1-D uint8 tensor."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    img = _to_pil(input, "encode_jpeg")
    if img.mode not in ("L", "RGB"):
        raise ValueError(f"encode_jpeg: JPEG holds 1 or 3 channels, got mode {img.mode}")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return _make(xp.frombuffer(bytearray(buf.getvalue()), dtype=xp.uint8))


def write_png(input, filename, compression_level: int = 6) -> None:
    """Write a uint8 ``(C, H, W)`` image as a PNG file."""
    write_file(filename, encode_png(input, compression_level))


def write_jpeg(input, filename, quality: int = 75) -> None:
    """Write a uint8 ``(C, H, W)`` image as a JPEG file."""
    write_file(filename, encode_jpeg(input, quality))

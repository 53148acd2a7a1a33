"""``deepbox.vision.utils``: torchvision's picture helpers — ``make_grid``, ``save_image``,
``draw_bounding_boxes`` and ``draw_segmentation_masks``, with torchvision's semantics.

``make_grid`` lays a batch ``(B, C, H, W)`` out row by row, ``nrow`` images per row, with
``padding`` pixels of ``pad_value`` around and between them; one-channel images become three
channels; ``normalize=True`` shifts and scales to [0, 1] using ``value_range`` (or the min and
max, of each image when ``scale_each``). ``save_image`` writes that grid, scaled by 255 and
rounded (``x * 255 + 0.5`` clamped to [0, 255], then truncated), as PNG/JPEG via Pillow.
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = ["make_grid", "save_image", "draw_bounding_boxes", "draw_segmentation_masks"]


def _array(x, what: str):
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, xp.ndarray):
        return x
    raise TypeError(f"{what}: expected a tensor or a list of tensors, got {type(x).__name__}")


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range: tuple | None = None, scale_each: bool = False, pad_value: float = 0.0) -> Tensor:
    """A grid of images.

    Args:
        tensor: a 4-D batch ``(B, C, H, W)``, a list of ``(C, H, W)`` images, or one image
            ``(C, H, W)`` / ``(H, W)``.
        nrow: images per row (the grid is ``ceil(B / nrow)`` rows tall).
        padding: pixels between images and around the grid.
        normalize: shift and scale to [0, 1] by ``value_range`` (clamping) or the min and max.
        value_range: ``(low, high)`` for ``normalize``.
        scale_each: normalise each image by its own min and max.
        pad_value: the value of the padding pixels.

    Returns:
        a ``(C, H', W')`` tensor (three channels when the images have one).
    """
    if isinstance(tensor, (list, tuple)):
        arr = xp.stack([_array(t, "make_grid") for t in tensor], axis=0)
    else:
        arr = _array(tensor, "make_grid")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3:
        if arr.shape[0] == 1:
            arr = xp.concatenate([arr, arr, arr], axis=0)
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"make_grid expects a 4-D batch (B, C, H, W) or a 2-D/3-D image, got shape {arr.shape}")
    if arr.shape[1] == 1:
        arr = xp.concatenate([arr, arr, arr], axis=1)
    if normalize:
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError("value_range has to be a tuple (min, max) if specified. min and max are numbers")
        arr = arr.astype(arr.dtype if arr.dtype.kind == "f" else backend.get_default_dtype().np, copy=True)

        def norm_range(t):
            low, high = (value_range if value_range is not None else (float(t.min()), float(t.max())))
            xp.clip(t, low, high, out=t)
            t -= low
            t /= max(high - low, 1e-5)

        if scale_each:
            for t in arr:
                norm_range(t)
        else:
            norm_range(arr)
    if arr.shape[0] == 1:
        return _make(arr[0].copy())
    nmaps = arr.shape[0]
    xmaps = min(nrow, nmaps)
    ymaps = int(math.ceil(nmaps / xmaps))
    height, width = arr.shape[2] + padding, arr.shape[3] + padding
    grid = xp.full((arr.shape[1], height * ymaps + padding, width * xmaps + padding), pad_value, dtype=arr.dtype)
    for k in range(nmaps):
        y, x = divmod(k, xmaps)
        top, left = y * height + padding, x * width + padding
        grid[:, top:top + height - padding, left:left + width - padding] = arr[k]
    return _make(grid)


def _to_uint8_hwc(grid):
    """torchvision's conversion for saving: ``x * 255 + 0.5``, clamped to [0, 255], truncated to uint8."""
    a = grid.astype(xp.float32) * 255 + 0.5
    xp.clip(a, 0, 255, out=a)
    return a.astype(xp.uint8).transpose(1, 2, 0)


def save_image(tensor, fp, format: str | None = None, **kwargs) -> None:
    """Save a tensor (or a list of them) as an image file: ``make_grid(tensor, **kwargs)`` scaled to 0-255.

    Args:
        tensor: what ``make_grid`` takes; values in [0, 1] (or pass ``normalize=True``).
        fp: a path or a binary file object.
        format: the image format when ``fp`` has no suffix (``"png"``, ``"jpeg"``).
        **kwargs: ``make_grid``'s options (``nrow``, ``padding``, ``normalize``, ...).
    """
    from PIL import Image

    grid = make_grid(tensor, **kwargs)._data
    hwc = _to_uint8_hwc(grid)
    img = Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)
    img.save(fp, format=format)


# ---------------------------------------------------------------------------------------------- drawing
def _palette(n: int) -> list:
    # torchvision's palette: colour i is (i * (2**25-1, 2**15-1, 2**21-1)) % 255
    base = (2 ** 25 - 1, 2 ** 15 - 1, 2 ** 21 - 1)
    return [tuple((i * b) % 255 for b in base) for i in range(n)]


def _colour(c) -> tuple:
    if isinstance(c, str):
        from PIL import ImageColor

        return ImageColor.getrgb(c)[:3]
    if isinstance(c, (tuple, list)) and len(c) >= 3:
        return tuple(int(v) for v in c[:3])
    raise ValueError(f"a colour is a name ('red', '#ff0000') or an (R, G, B) tuple, got {c!r}")


def _colours(colors, n: int) -> list:
    if colors is None:
        return _palette(n)
    if isinstance(colors, list):
        if len(colors) < n:
            raise ValueError(f"Number of colors must be equal or larger than the number of objects, but got "
                             f"{len(colors)} < {n}.")
        return [_colour(c) for c in colors[:n]]
    return [_colour(colors)] * n


def _check_image(image, who: str):
    arr = _array(image, who)
    if arr.dtype != xp.uint8:
        raise ValueError(f"{who}: the image dtype must be uint8, got {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"{who}: pass individual images (C, H, W), not batches; got shape {arr.shape}")
    if arr.shape[0] not in (1, 3):
        raise ValueError(f"{who}: only grayscale and RGB images are supported, got {arr.shape[0]} channels")
    if arr.shape[0] == 1:
        arr = xp.concatenate([arr] * 3, axis=0)
    return arr


def draw_bounding_boxes(image, boxes, labels: list | None = None, colors=None, fill: bool = False, width: int = 1,
                        font: str | None = None, font_size: int | None = None) -> Tensor:
    """Draw boxes (``xmin, ymin, xmax, ymax`` in pixels) on a uint8 ``(C, H, W)`` image; returns a new one.

    ``fill`` shades each box with its colour at 100/255 opacity; ``labels`` are written at each box's
    top-left corner; ``colors`` is one colour, a list (one per box) or None (torchvision's palette).
    """
    from PIL import Image, ImageDraw, ImageFont

    arr = _check_image(image, "draw_bounding_boxes")
    b = _array(boxes, "draw_bounding_boxes boxes")
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"draw_bounding_boxes: boxes must have shape (N, 4), got {b.shape}")
    if b.size and ((b[:, 0] > b[:, 2]).any() or (b[:, 1] > b[:, 3]).any()):
        raise ValueError("Boxes need to be in (xmin, ymin, xmax, ymax) format. Use torchvision.ops.box_convert to "
                         "convert them")
    n = b.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"Number of boxes ({n}) and labels ({len(labels)}) mismatch. Please specify labels for "
                         "each box.")
    if n == 0:
        return _make(arr.copy())
    cols = _colours(colors, n)
    img = Image.fromarray(arr.transpose(1, 2, 0).copy())
    draw = ImageDraw.Draw(img, "RGBA" if fill else None)
    txt_font = ImageFont.load_default() if font is None else ImageFont.truetype(font, size=font_size or 10)
    for i, box in enumerate(b.astype(xp.int64).tolist()):
        colour = cols[i]
        if fill:
            draw.rectangle(box, width=width, outline=colour, fill=colour + (100,))
        else:
            draw.rectangle(box, width=width, outline=colour)
        if labels is not None and labels[i]:
            margin = width + 1
            draw.text((box[0] + margin, box[1] + margin), str(labels[i]), fill=colour, font=txt_font)
    return _make(xp.asarray(img).transpose(2, 0, 1).copy())


def draw_segmentation_masks(image, masks, alpha: float = 0.8, colors=None) -> Tensor:
    """Blend boolean masks ``(H, W)`` or ``(N, H, W)`` onto a uint8 ``(C, H, W)`` image.

    Each mask's pixels take its colour; the result is ``image * (1 - alpha) + coloured * alpha``,
    truncated to uint8, as in torchvision.
    """
    arr = _check_image(image, "draw_segmentation_masks")
    m = _array(masks, "draw_segmentation_masks masks")
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.dtype != xp.bool_:
        raise ValueError(f"draw_segmentation_masks: masks must be bool of shape (H, W) or (N, H, W), got "
                         f"{m.dtype} {m.shape}")
    if m.shape[-2:] != arr.shape[-2:]:
        raise ValueError(f"The image and the masks must have the same height and width: {arr.shape[-2:]} != "
                         f"{m.shape[-2:]}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if m.shape[0] == 0:
        return _make(arr.copy())
    cols = _colours(colors, m.shape[0])
    drawn = arr.copy()
    for mask, colour in zip(m, cols):
        drawn[:, mask] = xp.asarray(colour, dtype=xp.uint8)[:, None]
    out = arr.astype(xp.float32) * (1 - alpha) + drawn.astype(xp.float32) * alpha
    return _make(out.astype(xp.uint8))

"""Image transforms as callable objects with torchvision's names and semantics.

Each works on PIL images, deepbox tensors ``(..., C, H, W)`` and NumPy arrays
``(H, W[, C])`` (see ``functional``). Random transforms draw from deepbox's default
generator, so ``deepbox.manual_seed`` makes them reproducible (and DataLoader workers,
which reseed it per worker, reproducible too).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from deepbox import backend
from deepbox.vision.transforms import functional as F
from deepbox.vision.transforms.functional import InterpolationMode, _interp, _setup_size

__all__ = [
    "Compose", "ToTensor", "PILToTensor", "ToPILImage", "ConvertImageDtype", "Normalize", "Resize", "CenterCrop",
    "Pad", "Lambda", "RandomApply", "RandomChoice", "RandomOrder", "RandomCrop", "RandomHorizontalFlip",
    "RandomVerticalFlip", "RandomResizedCrop", "RandomRotation", "RandomAffine", "RandomErasing", "Grayscale",
    "RandomGrayscale", "InterpolationMode", "RandomPerspective", "ElasticTransform",
]


def _rng() -> np.random.Generator:
    # looked up at each call: manual_seed replaces the generator's state object
    return backend.rng()


def _uniform(low: float, high: float) -> float:
    return float(_rng().uniform(low, high))


def _randint(low: int, high: int) -> int:
    """An int in [low, high)."""
    return int(_rng().integers(low, high))


class Compose:
    """Apply ``transforms`` one after the other.

    Example:
        >>> Compose([ToTensor(), Normalize((0.5,), (0.5,))])
        Compose(
            ToTensor()
            Normalize(mean=[0.5], std=[0.5])
        )
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class _Repr:
    _fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({args})"


class ToTensor(_Repr):
    """PIL image or array (H, W[, C]) -> tensor (C, H, W); uint8 values are scaled to [0, 1]."""

    def __call__(self, pic):
        return F.to_tensor(pic)


class PILToTensor(_Repr):
    """PIL image -> tensor (C, H, W) of the image's dtype, unscaled."""

    def __call__(self, pic):
        return F.pil_to_tensor(pic)


class ToPILImage(_Repr):
    """Tensor (C, H, W) or array (H, W[, C]) -> PIL image."""

    _fields = ("mode",)

    def __init__(self, mode: str | None = None):
        self.mode = mode

    def __call__(self, pic):
        return F.to_pil_image(pic, self.mode)


class ConvertImageDtype(_Repr):
    """Convert a tensor image to ``dtype``, rescaling the values (uint8 255 <-> float 1.0)."""

    _fields = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    def __call__(self, image):
        return F.convert_image_dtype(image, self.dtype)


class Normalize(_Repr):
    """``(image - mean) / std`` per channel of a float image.

    Args:
        mean: one mean per channel (or one for all).
        std: one standard deviation per channel (or one for all).
        inplace: change the input tensor.
    """

    _fields = ("mean", "std")

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean = list(mean) if isinstance(mean, Sequence) else [mean]
        self.std = list(std) if isinstance(std, Sequence) else [std]
        self.inplace = inplace

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)


class Resize(_Repr):
    """Resize to ``size`` (``(h, w)``, or an int for the smaller edge), see ``functional.resize``."""

    _fields = ("size", "interpolation", "max_size", "antialias")

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size: int | None = None,
                 antialias: bool | None = True):
        if not (size is None or isinstance(size, numbers.Integral) or
                (isinstance(size, Sequence) and len(size) in (1, 2))):
            raise TypeError(f"Size should be int or sequence of one or two ints. Got {size!r}")
        self.size = size
        self.interpolation = _interp(interpolation)
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)


class CenterCrop(_Repr):
    """The central ``size`` region (an int for a square); smaller images are zero-padded first."""

    _fields = ("size",)

    def __init__(self, size):
        self.size = _setup_size(size)

    def __call__(self, img):
        return F.center_crop(img, self.size)


class Pad(_Repr):
    """Pad the borders, see ``functional.pad``.

    Args:
        padding: an int, (left/right, top/bottom) or (left, top, right, bottom).
        fill: the constant for ``padding_mode="constant"`` (a number, or one per channel).
        padding_mode: ``constant``, ``edge``, ``reflect`` or ``symmetric``.
    """

    _fields = ("padding", "fill", "padding_mode")

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        F._parse_padding(padding)  # validates
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, got "
                             f"{padding_mode!r}")
        self.padding = padding
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, img):
        return F.pad(img, self.padding, self.fill, self.padding_mode)


class Lambda(_Repr):
    """Apply a user function as a transform."""

    def __init__(self, lambd: Callable):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class RandomApply(_Repr):
    """Apply the list of ``transforms`` with probability ``p``."""

    _fields = ("p",)

    def __init__(self, transforms: Sequence[Callable], p: float = 0.5):
        self.transforms = list(transforms)
        self.p = p

    def __call__(self, img):
        if self.p < _rng().random():
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomChoice(_Repr):
    """Apply one transform picked at random (with probabilities ``p``)."""

    def __init__(self, transforms: Sequence[Callable], p: Sequence[float] | None = None):
        self.transforms = list(transforms)
        if p is not None and len(p) != len(self.transforms):
            raise ValueError(f"Length of p doesn't match the number of transforms: {len(p)} != "
                             f"{len(self.transforms)}")
        self.p = p

    def __call__(self, img):
        p = None if self.p is None else np.asarray(self.p, dtype=np.float64) / np.sum(self.p)
        return self.transforms[int(_rng().choice(len(self.transforms), p=p))](img)


class RandomOrder(_Repr):
    """Apply ``transforms`` in a random order."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for i in _rng().permutation(len(self.transforms)):
            img = self.transforms[int(i)](img)
        return img


class RandomCrop(_Repr):
    """A ``size`` crop at a random place, after optional padding.

    Args:
        size: ``(h, w)`` or an int for a square.
        padding: padded onto every border first (int, 2 or 4 values as in ``Pad``).
        pad_if_needed: pad an image smaller than ``size`` (both sides by the shortfall, as torchvision).
        fill, padding_mode: as in ``Pad``.
    """

    _fields = ("size", "padding")

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _setup_size(size)
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(img, output_size) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of a random crop of ``output_size``."""
        _, h, w = F.get_dimensions(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if w == tw and h == th:
            return 0, 0, h, w
        i = _randint(0, h - th + 1)
        j = _randint(0, w - tw + 1)
        return i, j, th, tw

    def __call__(self, img):
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        _, height, width = F.get_dimensions(img)
        if self.pad_if_needed and width < self.size[1]:
            img = F.pad(img, [self.size[1] - width, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and height < self.size[0]:
            img = F.pad(img, [0, self.size[0] - height], self.fill, self.padding_mode)
        i, j, h, w = self.get_params(img, self.size)
        return F.crop(img, i, j, h, w)


class RandomHorizontalFlip(_Repr):
    """Mirror left to right with probability ``p``."""

    _fields = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        if _rng().random() < self.p:
            return F.hflip(img)
        return img


class RandomVerticalFlip(_Repr):
    """Mirror top to bottom with probability ``p``."""

    _fields = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        if _rng().random() < self.p:
            return F.vflip(img)
        return img


class RandomResizedCrop(_Repr):
    """A crop of random area and aspect ratio, resized to ``size`` (torchvision's Inception-style crop)."""

    _fields = ("size", "scale", "ratio")

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias: bool | None = True):
        self.size = _setup_size(size)
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation = _interp(interpolation)
        self.antialias = antialias

    @staticmethod
    def get_params(img, scale, ratio) -> tuple[int, int, int, int]:
        _, height, width = F.get_dimensions(img)
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * _uniform(scale[0], scale[1])
            aspect_ratio = math.exp(_uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                return _randint(0, height - h + 1), _randint(0, width - w + 1), h, w
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        i, j, h, w = self.get_params(img, self.scale, self.ratio)
        return F.resized_crop(img, i, j, h, w, self.size, self.interpolation, antialias=self.antialias)


def _setup_angle(x, name: str, req_sizes=(2,)) -> list[float]:
    if isinstance(x, numbers.Number):
        if x < 0:
            raise ValueError(f"If {name} is a single number, it must be positive.")
        return [-float(x), float(x)]
    if not (isinstance(x, Sequence) and len(x) in req_sizes):
        raise ValueError(f"{name} should be a number or a sequence of length {' or '.join(map(str, req_sizes))}")
    return [float(d) for d in x]


class RandomRotation(_Repr):
    """Rotate by an angle drawn uniformly from ``degrees`` (counter-clockwise), see ``functional.rotate``.

    Args:
        degrees: ``(min, max)``, or a number ``d`` for ``(-d, d)``.
        interpolation: NEAREST (default) or BILINEAR.
        expand: grow the output to hold the whole rotated image.
        center: ``(x, y)`` (default: the image centre).
        fill: the value for pixels from outside the image.
    """

    _fields = ("degrees", "interpolation", "expand", "fill")

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand: bool = False, center=None,
                 fill=0):
        self.degrees = _setup_angle(degrees, "degrees")
        self.interpolation = _interp(interpolation)
        self.expand = expand
        self.center = center
        self.fill = fill

    @staticmethod
    def get_params(degrees: list[float]) -> float:
        return _uniform(degrees[0], degrees[1])

    def __call__(self, img):
        angle = self.get_params(self.degrees)
        return F.rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)


class RandomAffine(_Repr):
    """A random affine map: rotation (clockwise), translation, scale and shear about the centre.

    Args:
        degrees: ``(min, max)`` or ``d`` for ``(-d, d)``; 0 for none.
        translate: ``(a, b)``: horizontal shift drawn from ``[-a*W, a*W]``, vertical from ``[-b*H, b*H]``.
        scale: ``(min, max)`` zoom factor.
        shear: ``d`` (x in ``(-d, d)``), ``(min, max)`` for x, or ``(xmin, xmax, ymin, ymax)``.
        interpolation: NEAREST (default) or BILINEAR.
        fill: the value for pixels from outside the image.
        center: ``(x, y)`` (default: the image centre).
    """

    _fields = ("degrees", "translate", "scale", "shear")

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation=InterpolationMode.NEAREST,
                 fill=0, center=None):
        self.degrees = _setup_angle(degrees, "degrees")
        if translate is not None:
            if not (isinstance(translate, Sequence) and len(translate) == 2):
                raise ValueError("translate should be a sequence of length 2")
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError("translation values should be between 0 and 1")
        if scale is not None:
            if not (isinstance(scale, Sequence) and len(scale) == 2):
                raise ValueError("scale should be a sequence of length 2")
            if any(s <= 0 for s in scale):
                raise ValueError("scale values should be positive")
        self.translate = translate
        self.scale = scale
        self.shear = _setup_angle(shear, "shear", req_sizes=(2, 4)) if shear is not None else None
        self.interpolation = _interp(interpolation)
        self.fill = fill
        self.center = center

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size) -> tuple[float, tuple[int, int], float,
                                                                              tuple[float, float]]:
        """``(angle, (tx, ty), scale, (shear_x, shear_y))`` for an image of ``img_size = [W, H]``."""
        angle = _uniform(degrees[0], degrees[1])
        if translate is not None:
            max_dx = float(translate[0] * img_size[0])
            max_dy = float(translate[1] * img_size[1])
            tx = int(round(_uniform(-max_dx, max_dx)))
            ty = int(round(_uniform(-max_dy, max_dy)))
            translations = (tx, ty)
        else:
            translations = (0, 0)
        scale = _uniform(scale_ranges[0], scale_ranges[1]) if scale_ranges is not None else 1.0
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = _uniform(shears[0], shears[1])
            if len(shears) == 4:
                shear_y = _uniform(shears[2], shears[3])
        return angle, translations, scale, (shear_x, shear_y)

    def __call__(self, img):
        w, h = F.get_image_size(img)
        angle, translations, scale, shear = self.get_params(self.degrees, self.translate, self.scale, self.shear,
                                                            [w, h])
        return F.affine(img, angle, list(translations), scale, list(shear), self.interpolation, self.fill,
                        self.center)


class RandomErasing(_Repr):
    """With probability ``p``, erase a random rectangle of a tensor (or array) image.

    Args:
        p: the probability of erasing.
        scale: the range of the erased area as a fraction of the image.
        ratio: the range of the rectangle's aspect ratio.
        value: the fill: a number, one per channel, or ``"random"`` for normal noise.
        inplace: change the input.
    """

    _fields = ("p", "scale", "ratio", "value")

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace: bool = False):
        if not isinstance(value, (numbers.Number, str, tuple, list)):
            raise TypeError("Argument value should be either a number or str or a sequence")
        if isinstance(value, str) and value != "random":
            raise ValueError("If value is str, it should be 'random'")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError("Scale should be between 0 and 1")
        if p < 0 or p > 1:
            raise ValueError("Random erasing probability should be between 0 and 1")
        self.p, self.scale, self.ratio, self.value, self.inplace = p, scale, ratio, value, inplace

    @staticmethod
    def get_params(img, scale, ratio, value=None):
        """``(i, j, h, w, v)`` of the rectangle and its fill; the whole image unchanged if none fits."""
        c, img_h, img_w = F.get_dimensions(img)
        area = img_h * img_w
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            erase_area = area * _uniform(scale[0], scale[1])
            aspect_ratio = math.exp(_uniform(log_ratio[0], log_ratio[1]))
            h = int(round(math.sqrt(erase_area * aspect_ratio)))
            w = int(round(math.sqrt(erase_area / aspect_ratio)))
            if not (h < img_h and w < img_w):
                continue
            if value is None:
                v = _rng().standard_normal((c, h, w)).astype(np.float32)
            else:
                v = np.asarray(value, dtype=np.float32).reshape(-1)
            i = _randint(0, img_h - h + 1)
            j = _randint(0, img_w - w + 1)
            return i, j, h, w, v
        return 0, 0, img_h, img_w, None

    def __call__(self, img):
        if F._check_image(img) == "pil":
            raise TypeError("RandomErasing works on tensors and NumPy arrays, not PIL images; put it after "
                            "ToTensor()")
        if _rng().random() >= self.p:
            return img
        c = F.get_dimensions(img)[0]
        if isinstance(self.value, numbers.Number):
            value = [float(self.value)]
        elif isinstance(self.value, str):
            value = None
        else:
            value = [float(v) for v in self.value]
        if value is not None and len(value) not in (1, c):
            raise ValueError(f"If value is a sequence, it should have either a single value or {c} (number of "
                             "input channels)")
        i, j, h, w, v = self.get_params(img, self.scale, self.ratio, value)
        if v is None:
            return img
        return F.erase(img, i, j, h, w, v, self.inplace)


class Grayscale(_Repr):
    """Convert to grey with ``num_output_channels`` (1 or 3) channels."""

    _fields = ("num_output_channels",)

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels should be either 1 or 3, got {num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img):
        return F.rgb_to_grayscale(img, self.num_output_channels)


class RandomGrayscale(_Repr):
    """Convert to grey (keeping the channel count) with probability ``p``."""

    _fields = ("p",)

    def __init__(self, p: float = 0.1):
        self.p = p

    def __call__(self, img):
        c = F.get_image_num_channels(img)
        if _rng().random() < self.p:
            return F.rgb_to_grayscale(img, num_output_channels=c)
        return img



class RandomPerspective(_Repr):
    """With probability ``p``, a random perspective warp (see ``functional.perspective``): each corner
    moves inward by a random whole number of pixels, up to ``distortion_scale`` times half the width
    (horizontally) and half the height (vertically).

    Args:
        distortion_scale: 0 (none) to 1.
        p: the probability of warping.
        interpolation: BILINEAR (default) or NEAREST.
        fill: the value for pixels from outside the image.
    """

    _fields = ("p",)

    def __init__(self, distortion_scale: float = 0.5, p: float = 0.5, interpolation=InterpolationMode.BILINEAR,
                 fill=0):
        if not 0.0 <= distortion_scale <= 1.0:
            raise ValueError(f"distortion_scale should be between 0 and 1, got {distortion_scale}")
        if not isinstance(fill, (numbers.Number, tuple, list)):
            raise TypeError("Fill should be either a sequence or a number.")
        self.distortion_scale = distortion_scale
        self.p = p
        self.interpolation = _interp(interpolation)
        self.fill = fill

    @staticmethod
    def get_params(width: int, height: int, distortion_scale: float) -> tuple[list[list[int]], list[list[int]]]:
        """``(startpoints, endpoints)``: the image's corners (top-left, top-right, bottom-right, bottom-left)
        and where each goes."""
        dx, dy = int(distortion_scale * (width // 2)), int(distortion_scale * (height // 2))
        topleft = [_randint(0, dx + 1), _randint(0, dy + 1)]
        topright = [_randint(width - dx - 1, width), _randint(0, dy + 1)]
        botright = [_randint(width - dx - 1, width), _randint(height - dy - 1, height)]
        botleft = [_randint(0, dx + 1), _randint(height - dy - 1, height)]
        startpoints = [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]]
        return startpoints, [topleft, topright, botright, botleft]

    def __call__(self, img):
        if _rng().random() < self.p:
            width, height = F.get_image_size(img)
            startpoints, endpoints = self.get_params(width, height, self.distortion_scale)
            return F.perspective(img, startpoints, endpoints, self.interpolation, self.fill)
        return img


def _pair_of_floats(value, name: str) -> list[float]:
    if isinstance(value, numbers.Number):
        return [float(value), float(value)]
    if not isinstance(value, Sequence):
        raise TypeError(f"{name} should be float or a sequence of floats. Got {type(value)}")
    if len(value) == 1:
        return [float(value[0])] * 2
    if len(value) != 2:
        raise ValueError(f"If {name} is a sequence its length should be one of 2. Got {len(value)}")
    return [float(v) for v in value]


class ElasticTransform(_Repr):
    """Move each pixel by a smooth random displacement (see ``functional.elastic_transform``): uniform
    noise in [-1, 1] per pixel and axis, blurred with a Gaussian of std ``sigma`` (kernel 8·sigma + 1, odd),
    scaled by ``alpha`` / height (x) and ``alpha`` / width (y), as torchvision does.

    Args:
        alpha: the displacement's strength (a number, or one per axis).
        sigma: its smoothness (a number, or one per axis).
        interpolation: BILINEAR (default) or NEAREST.
        fill: the value for pixels from outside the image.
    """

    def __init__(self, alpha=50.0, sigma=5.0, interpolation=InterpolationMode.BILINEAR, fill=0):
        self.alpha = _pair_of_floats(alpha, "alpha")
        self.sigma = _pair_of_floats(sigma, "sigma")
        if not isinstance(fill, (numbers.Number, tuple, list)):
            raise TypeError(f"fill should be int or float or a tuple or list, got {type(fill)}")
        self.interpolation = _interp(interpolation)
        self.fill = fill

    @staticmethod
    def get_params(alpha: list[float], sigma: list[float], size: list[int]):
        """A ``(1, H, W, 2)`` displacement tensor for an image of ``size = [H, W]``."""
        from deepbox.tensor import _make

        fields = []
        for axis in range(2):
            noise = _make((_rng().random((1, 1) + tuple(size)) * 2 - 1).astype(np.float32))
            if sigma[axis] > 0.0:
                k = int(8 * sigma[axis] + 1)
                k += k % 2 == 0  # the kernel must be odd
                noise = F.gaussian_blur(noise, [k, k], sigma)
            fields.append(noise._data[0, 0] * alpha[axis] / size[axis])
        return _make(np.stack(fields, axis=-1)[None])

    def __call__(self, img):
        _, height, width = F.get_dimensions(img)
        displacement = self.get_params(self.alpha, self.sigma, [height, width])
        return F.elastic_transform(img, displacement, self.interpolation, self.fill)

    def __repr__(self) -> str:
        return (f"ElasticTransform(alpha={self.alpha}, sigma={self.sigma}, interpolation={self.interpolation}, "
                f"fill={self.fill})")

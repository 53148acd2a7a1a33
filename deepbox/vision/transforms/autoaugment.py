"""Random colour transforms and the learned and random augmentation policies (torchvision's
``ColorJitter``, ``GaussianBlur``, ``RandomInvert`` ..., ``AutoAugment``, ``RandAugment``,
``TrivialAugmentWide``, ``AugMix``).

Each policy draws, per image, a few operations from one list -- shears, translations, rotation,
brightness, colour (saturation), contrast, sharpness, posterize, solarize, autocontrast,
equalize, invert -- with a magnitude from a range cut into bins:

* ``AutoAugment``: 25 sub-policies of two operations each, learned on ImageNet, CIFAR-10 or SVHN
  (Cubuk et al., 2019); each operation applies with its own probability and magnitude bin;
* ``RandAugment``: ``num_ops`` operations drawn uniformly, all at one ``magnitude`` (Cubuk et al., 2020);
* ``TrivialAugmentWide``: one operation at a uniformly drawn magnitude, over wider ranges
  (Mueller and Hutter, 2021).
"""
from __future__ import annotations

import math
from enum import Enum

import numpy as np

from deepbox import backend
from deepbox.vision.transforms import functional as F
from deepbox.vision.transforms.functional import InterpolationMode

__all__ = ["AugMix", "AutoAugment", "AutoAugmentPolicy", "ColorJitter", "GaussianBlur", "RandAugment",
           "RandomAdjustSharpness",
           "RandomAutocontrast", "RandomEqualize", "RandomInvert", "RandomPosterize", "RandomSolarize",
           "TrivialAugmentWide"]


def _rng():
    return backend.rng()


class _Random:
    """Apply ``self._apply`` with probability ``p``."""

    _fields: tuple = ("p",)

    def __call__(self, img):
        if _rng().random() < self.p:
            return self._apply(img)
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._fields)})"


class RandomInvert(_Random):
    def __init__(self, p: float = 0.5):
        self.p = p

    def _apply(self, img):
        return F.invert(img)


class RandomPosterize(_Random):
    _fields = ("bits", "p")

    def __init__(self, bits: int, p: float = 0.5):
        self.bits, self.p = bits, p

    def _apply(self, img):
        return F.posterize(img, self.bits)


class RandomSolarize(_Random):
    _fields = ("threshold", "p")

    def __init__(self, threshold: float, p: float = 0.5):
        self.threshold, self.p = threshold, p

    def _apply(self, img):
        return F.solarize(img, self.threshold)


class RandomAdjustSharpness(_Random):
    _fields = ("sharpness_factor", "p")

    def __init__(self, sharpness_factor: float, p: float = 0.5):
        self.sharpness_factor, self.p = sharpness_factor, p

    def _apply(self, img):
        return F.adjust_sharpness(img, self.sharpness_factor)


class RandomAutocontrast(_Random):
    def __init__(self, p: float = 0.5):
        self.p = p

    def _apply(self, img):
        return F.autocontrast(img)


class RandomEqualize(_Random):
    def __init__(self, p: float = 0.5):
        self.p = p

    def _apply(self, img):
        return F.equalize(img)


def _check_range(value, name, center=1.0, bound=(0, float("inf")), clip_first_on_zero=True):
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be non negative.")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"{name} values should be between {bound}, but got {value}.")
    return None if value[0] == value[1] == center else tuple(value)


class ColorJitter:
    """Random brightness, contrast, saturation and hue changes, applied in a random order.

    Each argument is a maximum deviation ``d`` (factor drawn from [max(0, 1 - d), 1 + d]; hue from
    [-d, d], d <= 0.5) or an explicit ``(min, max)``.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _check_range(brightness, "brightness")
        self.contrast = _check_range(contrast, "contrast")
        self.saturation = _check_range(saturation, "saturation")
        self.hue = _check_range(hue, "hue", center=0, bound=(-0.5, 0.5), clip_first_on_zero=False)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue):
        """The order of the four adjustments and their factors (None where not applied)."""
        rng = _rng()
        order = rng.permutation(4)
        b = None if brightness is None else float(rng.uniform(*brightness))
        c = None if contrast is None else float(rng.uniform(*contrast))
        s = None if saturation is None else float(rng.uniform(*saturation))
        h = None if hue is None else float(rng.uniform(*hue))
        return order, b, c, s, h

    def __call__(self, img):
        order, b, c, s, h = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        for i in order:
            if i == 0 and b is not None:
                img = F.adjust_brightness(img, b)
            elif i == 1 and c is not None:
                img = F.adjust_contrast(img, c)
            elif i == 2 and s is not None:
                img = F.adjust_saturation(img, s)
            elif i == 3 and h is not None:
                img = F.adjust_hue(img, h)
        return img

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation}, "
                f"hue={self.hue})")


class GaussianBlur:
    """Blur with an odd ``kernel_size`` and a sigma drawn uniformly from ``sigma`` (min, max) per image."""

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(ks) != 2 or any(k <= 0 or k % 2 == 0 for k in ks):
            raise ValueError("Kernel size value should be an odd and positive number.")
        if isinstance(sigma, (int, float)):
            if sigma <= 0:
                raise ValueError("If sigma is a single number, it must be positive.")
            sigma = (float(sigma), float(sigma))
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError("sigma values should be positive and of the form (min, max).")
        self.kernel_size, self.sigma = ks, tuple(sigma)

    def __call__(self, img):
        s = float(_rng().uniform(self.sigma[0], self.sigma[1]))
        return F.gaussian_blur(img, list(self.kernel_size), [s, s])

    def __repr__(self) -> str:
        return f"GaussianBlur(kernel_size={self.kernel_size}, sigma={self.sigma})"


# ----------------------------------------------------------------------------- augmentation policies
def _apply_op(img, name: str, magnitude: float, interpolation, fill):
    if name == "ShearX":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[math.degrees(math.atan(magnitude)), 0.0],
                        interpolation=interpolation, fill=fill, center=[0, 0])
    if name == "ShearY":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, math.degrees(math.atan(magnitude))],
                        interpolation=interpolation, fill=fill, center=[0, 0])
    if name == "TranslateX":
        return F.affine(img, angle=0.0, translate=[int(magnitude), 0], scale=1.0, interpolation=interpolation,
                        shear=[0.0, 0.0], fill=fill)
    if name == "TranslateY":
        return F.affine(img, angle=0.0, translate=[0, int(magnitude)], scale=1.0, interpolation=interpolation,
                        shear=[0.0, 0.0], fill=fill)
    if name == "Rotate":
        return F.rotate(img, magnitude, interpolation=interpolation, fill=fill)
    if name == "Brightness":
        return F.adjust_brightness(img, 1.0 + magnitude)
    if name == "Color":
        return F.adjust_saturation(img, 1.0 + magnitude)
    if name == "Contrast":
        return F.adjust_contrast(img, 1.0 + magnitude)
    if name == "Sharpness":
        return F.adjust_sharpness(img, 1.0 + magnitude)
    if name == "Posterize":
        return F.posterize(img, int(magnitude))
    if name == "Solarize":
        return F.solarize(img, magnitude)
    if name == "AutoContrast":
        return F.autocontrast(img)
    if name == "Equalize":
        return F.equalize(img)
    if name == "Invert":
        return F.invert(img)
    if name == "Identity":
        return img
    raise ValueError(f"The provided operator {name} is not recognized.")


def _space(num_bins: int, size, wide: bool = False) -> dict:
    """name -> (magnitudes by bin, signed): the ranges of the AutoAugment/RandAugment papers, or TrivialAugment's."""
    w, h = size
    lin = lambda hi: np.linspace(0.0, hi, num_bins)  # noqa: E731
    if wide:
        return {"Identity": (np.zeros(1), False), "ShearX": (lin(0.99), True), "ShearY": (lin(0.99), True),
                "TranslateX": (lin(32.0), True), "TranslateY": (lin(32.0), True), "Rotate": (lin(135.0), True),
                "Brightness": (lin(0.99), True), "Color": (lin(0.99), True), "Contrast": (lin(0.99), True),
                "Sharpness": (lin(0.99), True),
                "Posterize": (8 - np.round(np.arange(num_bins) / ((num_bins - 1) / 6)).astype(int), False),
                "Solarize": (np.linspace(255.0, 0.0, num_bins), False), "AutoContrast": (np.zeros(1), False),
                "Equalize": (np.zeros(1), False)}
    return {"Identity": (np.zeros(1), False), "ShearX": (lin(0.3), True), "ShearY": (lin(0.3), True),
            "TranslateX": (lin(150.0 / 331.0 * w), True), "TranslateY": (lin(150.0 / 331.0 * h), True),
            "Rotate": (lin(30.0), True), "Brightness": (lin(0.9), True), "Color": (lin(0.9), True),
            "Contrast": (lin(0.9), True), "Sharpness": (lin(0.9), True),
            "Posterize": (8 - np.round(np.arange(num_bins) / ((num_bins - 1) / 4)).astype(int), False),
            "Solarize": (np.linspace(255.0, 0.0, num_bins), False), "AutoContrast": (np.zeros(1), False),
            "Equalize": (np.zeros(1), False), "Invert": (np.zeros(1), False)}


def _fill_for(img, fill):
    if fill is None:
        return None
    if isinstance(fill, (int, float)):
        return [float(fill)] * F.get_image_num_channels(img)
    return [float(f) for f in fill]


class AutoAugmentPolicy(Enum):
    """The datasets AutoAugment's policies were learned on."""

    IMAGENET = "imagenet"
    CIFAR10 = "cifar10"
    SVHN = "svhn"


# (operation, probability, magnitude bin) pairs: the sub-policies published with AutoAugment
_POLICIES = {
    AutoAugmentPolicy.IMAGENET: [
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)), (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)), (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)), (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)), (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)), (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)), (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)), (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)), (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)), (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)), (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ],
    AutoAugmentPolicy.CIFAR10: [
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)), (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)), (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)), (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)), (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)), (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)), (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)), (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)), (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)), (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)), (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)), (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)), (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ],
    AutoAugmentPolicy.SVHN: [
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)), (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)), (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)), (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)), (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)), (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)), (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)), (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)), (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)), (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)), (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)), (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)), (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ],
}


class AutoAugment:
    """One of the policy's 25 two-step sub-policies per image (uint8 tensors or PIL images)."""

    def __init__(self, policy: AutoAugmentPolicy = AutoAugmentPolicy.IMAGENET,
                 interpolation: InterpolationMode = InterpolationMode.NEAREST, fill=None):
        if policy not in _POLICIES:
            raise ValueError(f"The provided policy {policy} is not recognized.")
        self.policy, self.interpolation, self.fill = policy, interpolation, fill
        self.policies = _POLICIES[policy]

    @staticmethod
    def get_params(transform_num: int):
        rng = _rng()
        return int(rng.integers(transform_num)), rng.random(2), rng.integers(2, size=2)

    def __call__(self, img):
        fill = _fill_for(img, self.fill)
        space = _space(10, F.get_image_size(img))
        policy_id, probs, signs = self.get_params(len(self.policies))
        for i, (name, p, bin_) in enumerate(self.policies[policy_id]):
            if probs[i] <= p:
                mags, signed = space[name]
                magnitude = float(mags[bin_]) if bin_ is not None else 0.0
                if signed and signs[i] == 0:
                    magnitude = -magnitude
                img = _apply_op(img, name, magnitude, self.interpolation, fill)
        return img

    def __repr__(self) -> str:
        return f"AutoAugment(policy={self.policy}, fill={self.fill})"


class RandAugment:
    """``num_ops`` operations drawn uniformly per image, each at bin ``magnitude`` of ``num_magnitude_bins``."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 interpolation: InterpolationMode = InterpolationMode.NEAREST, fill=None):
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, magnitude, num_magnitude_bins
        self.interpolation, self.fill = interpolation, fill

    def __call__(self, img):
        fill = _fill_for(img, self.fill)
        space = _space(self.num_magnitude_bins, F.get_image_size(img))
        space.pop("Invert")
        names = list(space)
        rng = _rng()
        for _ in range(self.num_ops):
            name = names[int(rng.integers(len(names)))]
            mags, signed = space[name]
            magnitude = float(mags[self.magnitude]) if mags.ndim > 0 and len(mags) > 1 else 0.0
            if signed and rng.integers(2):
                magnitude = -magnitude
            img = _apply_op(img, name, magnitude, self.interpolation, fill)
        return img

    def __repr__(self) -> str:
        return (f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
                f"num_magnitude_bins={self.num_magnitude_bins}, interpolation={self.interpolation}, fill={self.fill})")


class TrivialAugmentWide:
    """One operation per image at a uniformly drawn magnitude bin, over TrivialAugment's wide ranges."""

    def __init__(self, num_magnitude_bins: int = 31, interpolation: InterpolationMode = InterpolationMode.NEAREST,
                 fill=None):
        self.num_magnitude_bins, self.interpolation, self.fill = num_magnitude_bins, interpolation, fill

    def __call__(self, img):
        fill = _fill_for(img, self.fill)
        space = _space(self.num_magnitude_bins, F.get_image_size(img), wide=True)
        names = list(space)
        rng = _rng()
        name = names[int(rng.integers(len(names)))]
        mags, signed = space[name]
        magnitude = float(mags[int(rng.integers(len(mags)))]) if len(mags) > 1 else 0.0
        if signed and rng.integers(2):
            magnitude = -magnitude
        return _apply_op(img, name, magnitude, self.interpolation, fill)

    def __repr__(self) -> str:
        return (f"TrivialAugmentWide(num_magnitude_bins={self.num_magnitude_bins}, "
                f"interpolation={self.interpolation}, fill={self.fill})")


class AugMix:
    """AugMix (Hendrycks et al., 2020): ``mixture_width`` chains of 1 to 3 random operations (or
    ``chain_depth``), each at a random magnitude bin below ``severity``; the augmented images are mixed
    with Dirichlet(``alpha``) weights, and the mixture with the original by a Beta(``alpha``, ``alpha``)
    weight. Integer images are mixed in floating point and truncated back, as torchvision.

    Args:
        severity: 1 to 10, how strong the operations may be.
        mixture_width: the number of chains.
        chain_depth: operations per chain (-1: 1 to 3 at random).
        alpha: the concentration of the mixing weights.
        all_ops: include the colour operations (brightness, colour, contrast, sharpness).
        interpolation, fill: for the geometric operations.
    """

    _PARAMETER_MAX = 10

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1, alpha: float = 1.0,
                 all_ops: bool = True, interpolation: InterpolationMode = InterpolationMode.BILINEAR, fill=None):
        if not 1 <= severity <= self._PARAMETER_MAX:
            raise ValueError(f"The severity must be between [1, {self._PARAMETER_MAX}]. Got {severity} instead.")
        if mixture_width < 1:
            raise ValueError(f"mixture_width must be at least 1, got {mixture_width}")
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.severity, self.mixture_width, self.chain_depth = severity, mixture_width, chain_depth
        self.alpha, self.all_ops, self.interpolation, self.fill = alpha, all_ops, interpolation, fill

    def _augmentation_space(self, num_bins: int, image_size) -> dict:
        """name -> (magnitudes by bin, signed); ``image_size`` is ``(height, width)``."""
        height, width = image_size
        lin = lambda hi: np.linspace(0.0, hi, num_bins)  # noqa: E731
        space = {"ShearX": (lin(0.3), True), "ShearY": (lin(0.3), True), "TranslateX": (lin(width / 3.0), True),
                 "TranslateY": (lin(height / 3.0), True), "Rotate": (lin(30.0), True),
                 "Posterize": (4 - np.round(np.arange(num_bins) / ((num_bins - 1) / 4)).astype(int), False),
                 "Solarize": (np.linspace(255.0, 0.0, num_bins), False), "AutoContrast": (np.zeros(()), False),
                 "Equalize": (np.zeros(()), False)}
        if self.all_ops:
            space.update({"Brightness": (lin(0.9), True), "Color": (lin(0.9), True), "Contrast": (lin(0.9), True),
                          "Sharpness": (lin(0.9), True)})
        return space

    def __call__(self, img):
        pil = F._is_pil(img)
        work = np.asarray(img) if pil else img  # a PIL image is mixed as its (H, W[, C]) array
        fill = _fill_for(work, self.fill)
        width, height = F.get_image_size(work)
        space = self._augmentation_space(self._PARAMETER_MAX, (height, width))
        names = list(space)
        base, meta = F._to_chw(work)
        images = base.reshape((-1,) + base.shape[-3:]).astype(np.float64)  # (B, C, H, W)
        rng = _rng()
        # per image: the original's weight and the chains' weights (a Beta split, then a Dirichlet one)
        m = rng.dirichlet([self.alpha, self.alpha], size=images.shape[0])
        weights = rng.dirichlet([self.alpha] * self.mixture_width, size=images.shape[0]) * m[:, 1:]
        mix = m[:, 0, None, None, None] * images
        for i in range(self.mixture_width):
            aug = work
            depth = self.chain_depth if self.chain_depth > 0 else int(rng.integers(1, 4))
            for _ in range(depth):
                name = names[int(rng.integers(len(names)))]
                mags, signed = space[name]
                magnitude = float(mags[int(rng.integers(self.severity))]) if mags.ndim > 0 else 0.0
                if signed and rng.integers(2):
                    magnitude = -magnitude
                aug = _apply_op(aug, name, magnitude, self.interpolation, fill)
            mix += weights[:, i, None, None, None] * F._to_chw(aug)[0].reshape(images.shape)
        dtype = base.dtype
        out = mix.reshape(base.shape)
        out = np.trunc(out).astype(dtype) if dtype.kind in "iu" else out.astype(dtype)  # torch's .to(): truncation
        result = F._from_chw(out, meta)
        if pil:
            from PIL import Image

            return Image.fromarray(result)
        return result

    def __repr__(self) -> str:
        return (f"AugMix(severity={self.severity}, mixture_width={self.mixture_width}, chain_depth={self.chain_depth}"
                f", alpha={self.alpha}, all_ops={self.all_ops}, interpolation={self.interpolation}, "
                f"fill={self.fill})")

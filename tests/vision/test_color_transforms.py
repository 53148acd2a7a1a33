"""Colour adjustments and augmentation policies: uint8 tensors against PIL's ImageEnhance/ImageOps (which
torchvision's PIL path uses), hue against colorsys, blur against scipy.ndimage; the random transforms'
ranges, determinism under a seed, and PyTorch's errors."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from scipy import ndimage

import deepbox
import deepbox.vision.transforms as T
import deepbox.vision.transforms.functional as F
from deepbox.vision.transforms import autoaugment

rng = np.random.default_rng(0)
A = rng.integers(0, 256, (3, 16, 20), dtype=np.uint8)
PIL_IMG = Image.fromarray(A.transpose(1, 2, 0))

# name: (deepbox function, PIL reference, largest allowed difference: PIL rounds where torchvision truncates)
CASES = {
    "invert": (F.invert, ImageOps.invert, 0),
    "posterize": (lambda x: F.posterize(x, 3), lambda p: ImageOps.posterize(p, 3), 0),
    "solarize": (lambda x: F.solarize(x, 128), lambda p: ImageOps.solarize(p, 128), 0),
    "equalize": (F.equalize, ImageOps.equalize, 0),
    "autocontrast": (F.autocontrast, ImageOps.autocontrast, 0),
    "brightness": (lambda x: F.adjust_brightness(x, 1.3), lambda p: ImageEnhance.Brightness(p).enhance(1.3), 0),
    "contrast": (lambda x: F.adjust_contrast(x, 0.6), lambda p: ImageEnhance.Contrast(p).enhance(0.6), 1),
    "saturation": (lambda x: F.adjust_saturation(x, 1.7), lambda p: ImageEnhance.Color(p).enhance(1.7), 1),
    "sharpness": (lambda x: F.adjust_sharpness(x, 1.8), lambda p: ImageEnhance.Sharpness(p).enhance(1.8), 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_uint8_tensor_matches_pil(name):
    fn, ref, tol = CASES[name]
    ours = fn(deepbox.tensor(A)).numpy().astype(int)
    theirs = np.asarray(ref(PIL_IMG)).transpose(2, 0, 1).astype(int)
    assert np.abs(ours - theirs).max() <= tol
    out = fn(PIL_IMG)  # PIL in, PIL out
    assert isinstance(out, Image.Image) and np.array_equal(np.asarray(out), np.asarray(ref(PIL_IMG)))
    arr = fn(A.transpose(1, 2, 0))  # NumPy (H, W, C) in and out
    assert arr.shape == (16, 20, 3) and np.abs(arr.transpose(2, 0, 1).astype(int) - theirs).max() <= tol


@pytest.mark.parametrize("factor", [-0.5, -0.2, 0.0, 0.13, 0.5])
def test_adjust_hue_against_colorsys(factor):
    x = rng.random((3, 5, 6))
    ours = F.adjust_hue(deepbox.tensor(x), factor).numpy()
    ref = np.empty_like(x)
    for i in range(5):
        for j in range(6):
            h, s, v = colorsys.rgb_to_hsv(*x[:, i, j])
            ref[:, i, j] = colorsys.hsv_to_rgb((h + factor) % 1.0, s, v)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    with pytest.raises(ValueError, match=r"\[-0.5, 0.5\]"):
        F.adjust_hue(deepbox.tensor(x), 0.7)


def test_gaussian_blur_against_scipy():
    x = rng.random((2, 3, 11, 13)).astype(np.float32)
    ours = F.gaussian_blur(deepbox.tensor(x), [5, 3], [1.2, 0.7]).numpy()
    kx = np.exp(-0.5 * (np.arange(-2, 3) / 1.2) ** 2)
    ky = np.exp(-0.5 * (np.arange(-1, 2) / 0.7) ** 2)
    ref = ndimage.correlate1d(x, ky / ky.sum(), axis=-2, mode="mirror")  # mirror = torch's reflect padding
    ref = ndimage.correlate1d(ref, kx / kx.sum(), axis=-1, mode="mirror")
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    u = F.gaussian_blur(deepbox.tensor(A), 3).numpy()  # uint8: the float blur, rounded (sigma 0.8 for k = 3)
    k = np.exp(-0.5 * (np.arange(-1, 2) / 0.8) ** 2)
    ref = ndimage.correlate1d(A.astype(np.float64), k / k.sum(), axis=-2, mode="mirror")
    ref = ndimage.correlate1d(ref, k / k.sum(), axis=-1, mode="mirror")
    assert u.dtype == np.uint8 and np.abs(u.astype(int) - np.round(ref)).max() <= 1
    with pytest.raises(ValueError, match="odd"):
        F.gaussian_blur(deepbox.tensor(x), 4)


def test_gamma_and_float_images():
    x = rng.random((3, 4, 4))
    np.testing.assert_allclose(F.adjust_gamma(deepbox.tensor(x), 2.0).numpy(), x ** 2)
    np.testing.assert_allclose(F.adjust_brightness(deepbox.tensor(x), 2.0).numpy(), np.clip(2 * x, 0, 1))
    np.testing.assert_allclose(F.invert(deepbox.tensor(x)).numpy(), 1 - x)
    with pytest.raises(TypeError, match="uint8"):
        F.posterize(deepbox.tensor(x), 2)
    with pytest.raises(ValueError, match="non-negative"):
        F.adjust_contrast(deepbox.tensor(x), -1)


def test_color_jitter_ranges_and_fixed_factors():
    t = T.ColorJitter(brightness=(1.5, 1.5))
    np.testing.assert_array_equal(t(deepbox.tensor(A)).numpy(), F.adjust_brightness(deepbox.tensor(A), 1.5).numpy())
    assert T.ColorJitter(0.4).brightness == (0.6, 1.4)
    assert T.ColorJitter(hue=0.2).hue == (-0.2, 0.2)
    with pytest.raises(ValueError):
        T.ColorJitter(hue=0.7)
    with pytest.raises(ValueError):
        T.ColorJitter(brightness=-1)


@pytest.mark.parametrize("make", [lambda: T.AutoAugment(T.AutoAugmentPolicy.IMAGENET),
                                  lambda: T.AutoAugment(T.AutoAugmentPolicy.CIFAR10),
                                  lambda: T.AutoAugment(T.AutoAugmentPolicy.SVHN), lambda: T.RandAugment(),
                                  lambda: T.TrivialAugmentWide(), lambda: T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                                  lambda: T.GaussianBlur(5, (0.5, 1.5))])
def test_random_policies_are_seeded_and_keep_the_image_kind(make):
    t = make()
    outs = []
    for _ in range(2):
        deepbox.manual_seed(3)
        outs.append([t(deepbox.tensor(A)).numpy() for _ in range(8)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
        assert a.shape == A.shape and a.dtype == np.uint8
    assert isinstance(t(PIL_IMG), Image.Image)


@pytest.mark.parametrize("name", sorted(autoaugment._space(10, (20, 16))))
def test_every_policy_operation_runs_on_tensors_and_pil(name):
    mags, _ = autoaugment._space(10, (20, 16))[name]
    m = float(mags[len(mags) // 2])
    out = autoaugment._apply_op(deepbox.tensor(A), name, m, F.InterpolationMode.NEAREST, None)
    assert tuple(out.shape) == A.shape
    assert autoaugment._apply_op(PIL_IMG, name, m, F.InterpolationMode.NEAREST, None).size == PIL_IMG.size
    if name in ("Identity",):
        np.testing.assert_array_equal(out.numpy(), A)


def test_v2_namespace():
    from deepbox.vision.transforms import v2

    assert v2.RandAugment is T.RandAugment and v2.Compose is T.Compose
    assert v2.functional.adjust_hue is F.adjust_hue

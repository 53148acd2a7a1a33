"""RandomPerspective, ElasticTransform and AugMix (and ``functional.perspective`` / ``elastic_transform``):
torchvision's conventions checked on cases computed by hand (torchvision itself is not installed here: the
PyPI wheel of 0.28 for torch 2.13 is built for CUDA and does not import with the CPU torch), plus shapes,
dtypes, ranges and determinism under ``deepbox.manual_seed``."""
from __future__ import annotations

import numpy as np
import pytest

import deepbox
from deepbox.vision import transforms as T
from deepbox.vision.transforms import functional as F
from deepbox.vision.transforms import v2

R = np.random.default_rng(3)
CORNERS = [[0, 0], [7, 0], [7, 5], [0, 5]]  # of an 8 x 6 image


def image(c=3, h=6, w=8, dtype=np.float32):
    a = R.uniform(0, 1, (c, h, w)).astype(dtype) if dtype == np.float32 else R.integers(0, 256, (c, h, w)).astype(dtype)
    return deepbox.tensor(a)


def bilinear(a, u, v):
    """a (C, H, W) sampled at column u, row v; zero outside (as grid_sample with zero padding)."""
    h, w = a.shape[-2:]
    u0, v0 = int(np.floor(u)), int(np.floor(v))
    out = np.zeros(a.shape[0])
    for vv, wv in ((v0, 1 - (v - v0)), (v0 + 1, v - v0)):
        for uu, wu in ((u0, 1 - (u - u0)), (u0 + 1, u - u0)):
            if 0 <= uu < w and 0 <= vv < h:
                out += wu * wv * a[:, vv, uu]
    return out


# ----------------------------------------------------------------------------- perspective
def test_perspective_coefficients_map_end_points_to_start_points():
    end = [[1, 0], [6, 1], [7, 5], [0, 4]]
    a, b, c, d, e, f, g, h = F._get_perspective_coeffs(CORNERS, end)
    for (x, y), (sx, sy) in zip(end, CORNERS):
        den = g * x + h * y + 1
        assert abs((a * x + b * y + c) / den - sx) < 1e-9 and abs((d * x + e * y + f) / den - sy) < 1e-9


def test_perspective_identity_and_whole_pixel_shift():
    img = image()
    np.testing.assert_allclose(F.perspective(img, CORNERS, CORNERS).numpy(), img.numpy(), atol=1e-6)
    shifted = F.perspective(img, CORNERS, [[x + 1, y] for x, y in CORNERS])  # everything one pixel right
    expected = np.zeros_like(img.numpy())
    expected[:, :, 1:] = img.numpy()[:, :, :-1]
    np.testing.assert_allclose(shifted.numpy(), expected, atol=1e-6)
    filled = F.perspective(img, CORNERS, [[x + 1, y] for x, y in CORNERS], fill=[0.5, 0.25, 1.0])
    np.testing.assert_allclose(filled.numpy()[:, :, 0], np.array([[0.5], [0.25], [1.0]]) * np.ones((3, 6)),
                               atol=1e-6)


@pytest.mark.parametrize("interpolation", [T.InterpolationMode.BILINEAR, T.InterpolationMode.NEAREST])
def test_perspective_samples_the_inverse_mapped_pixel_centres(interpolation):
    img = image(dtype=np.float32).double()
    end = [[1, 0], [6, 1], [7, 5], [0, 4]]
    out = F.perspective(img, CORNERS, end, interpolation).numpy()
    a, b, c, d, e, f, g, h = F._get_perspective_coeffs(CORNERS, end)
    for i in range(6):
        for j in range(8):
            x, y = j + 0.5, i + 0.5
            u = (a * x + b * y + c) / (g * x + h * y + 1) - 0.5
            v = (d * x + e * y + f) / (g * x + h * y + 1) - 0.5
            if interpolation is T.InterpolationMode.NEAREST:
                ui, vi = int(np.rint(u)), int(np.rint(v))
                want = img.numpy()[:, vi, ui] if 0 <= ui < 8 and 0 <= vi < 6 else np.zeros(3)
            else:
                want = bilinear(img.numpy(), u, v)
            np.testing.assert_allclose(out[:, i, j], want, atol=1e-9, err_msg=f"pixel {i}, {j}")


def test_perspective_on_uint8_arrays_and_pil_images():
    img = image(dtype=np.uint8)
    end = [[1, 1], [6, 0], [7, 5], [1, 4]]
    t = F.perspective(img, CORNERS, end)
    assert t.dtype == deepbox.uint8 and t.shape == (3, 6, 8)
    arr = img.numpy().transpose(1, 2, 0)
    np.testing.assert_array_equal(F.perspective(arr, CORNERS, end), t.numpy().transpose(1, 2, 0))
    pil = pytest.importorskip("PIL.Image").fromarray(arr)
    assert np.array_equal(np.asarray(F.perspective(pil, CORNERS, CORNERS, T.InterpolationMode.NEAREST)), arr)
    assert np.abs(np.asarray(F.perspective(pil, CORNERS, CORNERS)).astype(int) - arr).max() <= 1  # PIL's rounding


def test_random_perspective():
    img = image()
    assert T.RandomPerspective(p=0.0)(img) is img
    np.testing.assert_allclose(T.RandomPerspective(0.0, p=1.0)(img).numpy(), img.numpy(), atol=1e-6)
    for _ in range(20):
        start, end = T.RandomPerspective.get_params(8, 6, 0.5)
        assert start == CORNERS
        (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = end
        assert 0 <= tlx <= 2 and 0 <= tly <= 1 and 5 <= trx <= 7 and 0 <= try_ <= 1
        assert 5 <= brx <= 7 and 4 <= bry <= 5 and 0 <= blx <= 2 and 4 <= bly <= 5
    u8 = image(dtype=np.uint8)
    deepbox.manual_seed(4)
    a = T.RandomPerspective(p=1.0)(u8)
    deepbox.manual_seed(4)
    b = v2.RandomPerspective(p=1.0)(u8)
    assert np.array_equal(a.numpy(), b.numpy())
    assert a.dtype == deepbox.uint8 and a.shape == (3, 6, 8)
    assert repr(T.RandomPerspective()) == "RandomPerspective(p=0.5)"
    with pytest.raises(ValueError, match="distortion_scale"):
        T.RandomPerspective(1.5)


# ----------------------------------------------------------------------------- elastic
def test_elastic_transform_fixed_displacements():
    img = image().double()
    zero = deepbox.zeros(1, 6, 8, 2)
    np.testing.assert_allclose(F.elastic_transform(img, zero).numpy(), img.numpy(), atol=1e-12)
    right = deepbox.zeros(1, 6, 8, 2)
    right[..., 0] = 2.0 / 8  # one pixel in normalised units: output (i, j) reads input (i, j + 1)
    expected = np.zeros_like(img.numpy())
    expected[:, :, :-1] = img.numpy()[:, :, 1:]
    np.testing.assert_allclose(F.elastic_transform(img, right).numpy(), expected, atol=1e-12)
    half_down = deepbox.zeros(1, 6, 8, 2)
    half_down[..., 1] = 0.5 * 2.0 / 6  # half a pixel down: the mean of rows i and i + 1
    expected = np.zeros_like(img.numpy())
    expected[:, :-1] = (img.numpy()[:, :-1] + img.numpy()[:, 1:]) / 2
    expected[:, -1] = img.numpy()[:, -1] / 2
    np.testing.assert_allclose(F.elastic_transform(img, half_down).numpy(), expected, atol=1e-12)
    filled = F.elastic_transform(img, right, fill=[1.0, 1.0, 1.0])
    np.testing.assert_allclose(filled.numpy()[:, :, -1], 1.0)
    with pytest.raises(ValueError, match="displacement should have shape"):
        F.elastic_transform(img, deepbox.zeros(1, 8, 6, 2))


def test_elastic_transform_class():
    t = T.ElasticTransform(alpha=20.0, sigma=0.0)
    disp = t.get_params(t.alpha, t.sigma, [6, 8])
    assert disp.shape == (1, 6, 8, 2) and disp.dtype == deepbox.float32
    assert np.abs(disp.numpy()[..., 0]).max() <= 20.0 / 6 and np.abs(disp.numpy()[..., 1]).max() <= 20.0 / 8
    smooth = T.ElasticTransform(alpha=1.0, sigma=2.0).get_params([1.0, 1.0], [2.0, 2.0], [12, 12]).numpy()
    rough = T.ElasticTransform(alpha=1.0, sigma=0.0).get_params([1.0, 1.0], [0.0, 0.0], [12, 12]).numpy()
    assert np.abs(np.diff(smooth, axis=2)).mean() < np.abs(np.diff(rough, axis=2)).mean() / 3  # blurred
    img = image(h=20, w=20, dtype=np.uint8)
    deepbox.manual_seed(1)
    a = T.ElasticTransform(alpha=30.0, sigma=2.0)(img)
    deepbox.manual_seed(1)
    b = v2.ElasticTransform(alpha=30.0, sigma=2.0)(img)
    assert a.dtype == deepbox.uint8 and a.shape == img.shape and np.array_equal(a.numpy(), b.numpy())
    assert repr(T.ElasticTransform()) == ("ElasticTransform(alpha=[50.0, 50.0], sigma=[5.0, 5.0], "
                                          "interpolation=InterpolationMode.BILINEAR, fill=0)")
    with pytest.raises(ValueError, match="length"):
        T.ElasticTransform(alpha=[1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------- AugMix
class _SolarizeOnly(T.AugMix):
    def _augmentation_space(self, num_bins, image_size):
        return {"Solarize": (np.zeros(num_bins), False)}  # threshold 0: every pixel x becomes max - x


def test_augmix_mixes_the_image_with_its_augmentations():
    img = image().double()
    x = img.numpy()
    out = _SolarizeOnly(mixture_width=2, chain_depth=1)(img).numpy()
    # out = m * x + (1 - m) * (1 - x) for one weight m in [0, 1]
    m = (out - (1 - x)) / (2 * x - 1)
    assert 0 <= m.mean() <= 1
    np.testing.assert_allclose(m, m.mean(), atol=1e-9)
    deepbox.manual_seed(0)
    ms = [((_SolarizeOnly(alpha=1e4, chain_depth=1)(img).numpy() - (1 - x)) / (2 * x - 1)).mean() for _ in range(3)]
    np.testing.assert_allclose(ms, 0.5, atol=0.02)  # a large alpha splits evenly


@pytest.mark.parametrize("kind", ["uint8", "batch", "array", "pil"])  # uint8, as torchvision (equalize needs it)
def test_augmix_kinds_shapes_dtypes_and_seeds(kind):
    u8 = image(h=16, w=16, dtype=np.uint8)
    img = {"uint8": u8, "batch": deepbox.stack([u8, u8]), "array": u8.numpy().transpose(1, 2, 0), "pil": None}[kind]
    if kind == "pil":
        img = pytest.importorskip("PIL.Image").fromarray(u8.numpy().transpose(1, 2, 0))
    outs = []
    for _ in range(2):
        deepbox.manual_seed(11)
        outs.append(T.AugMix(severity=5, all_ops=kind != "batch")(img))
    a = np.asarray(outs[0].numpy() if isinstance(outs[0], deepbox.Tensor) else outs[0])
    b = np.asarray(outs[1].numpy() if isinstance(outs[1], deepbox.Tensor) else outs[1])
    ref = np.asarray(img.numpy() if isinstance(img, deepbox.Tensor) else img)
    assert a.shape == ref.shape and a.dtype == ref.dtype and np.array_equal(a, b)
    assert not np.array_equal(a, ref)
    assert type(outs[0]) is type(img)


def test_augmix_arguments_and_repr():
    assert v2.AugMix is T.AugMix and v2.RandomPerspective is T.RandomPerspective
    assert repr(T.AugMix()) == ("AugMix(severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=True, "
                                "interpolation=InterpolationMode.BILINEAR, fill=None)")
    with pytest.raises(ValueError, match="severity"):
        T.AugMix(severity=11)
    with pytest.raises(ValueError, match="mixture_width"):
        T.AugMix(mixture_width=0)

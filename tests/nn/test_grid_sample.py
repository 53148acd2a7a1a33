"""F.affine_grid and F.grid_sample against PyTorch: values and gradients for every mode, padding mode and
align_corners, and a spatial transformer that learns its transformation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn.functional as F
from deepbox.autograd import gradcheck
from tests.helpers import check_op

rng = np.random.default_rng(0)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 5, 7), (1, 1, 1, 4), (3, 2, 4, 1)])
def test_affine_grid(size, align_corners):
    theta = rng.normal(size=(size[0], 2, 3))
    check_op(lambda t: F.affine_grid(t, size, align_corners=align_corners), theta,
             torch_fn=lambda t: torch.nn.functional.affine_grid(t, size, align_corners=align_corners))


CASES = list(itertools.product(["bilinear", "nearest"], ["zeros", "border", "reflection"], [False, True]))


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES)
def test_grid_sample_values_and_gradients(mode, padding_mode, align_corners):
    img = rng.normal(size=(2, 3, 5, 6))
    # points inside, near the edges and well outside the image, away from pixel boundaries where the
    # bilinear weights' derivative jumps (and from .5 ties in nearest mode)
    grid = rng.uniform(-1.6, 1.6, size=(2, 4, 3, 2))

    def fn(x, g):
        return F.grid_sample(x, g, mode=mode, padding_mode=padding_mode, align_corners=align_corners)

    def tfn(x, g):
        return torch.nn.functional.grid_sample(x, g, mode=mode, padding_mode=padding_mode,
                                               align_corners=align_corners)

    check_op(fn, img, grid, torch_fn=tfn)
    check_op(fn, img, grid, torch_fn=tfn, dtype=np.float32, rtol=1e-4, atol=1e-5)


def test_grid_sample_gradcheck():
    img = deepbox.tensor(rng.normal(size=(1, 2, 4, 5)), requires_grad=True)
    grid = deepbox.tensor(rng.uniform(-0.9, 0.9, size=(1, 3, 3, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: F.grid_sample(a, b, align_corners=False), (img, grid))
    assert gradcheck(lambda a, b: F.grid_sample(a, b, padding_mode="reflection", align_corners=True), (img, grid))


def test_identity_transform_reproduces_the_image():
    img = deepbox.tensor(rng.normal(size=(2, 3, 6, 5)))
    theta = deepbox.tensor(np.tile(np.array([[1.0, 0, 0], [0, 1, 0]]), (2, 1, 1)))
    for ac in (False, True):
        out = F.grid_sample(img, F.affine_grid(theta, (2, 3, 6, 5), align_corners=ac), align_corners=ac)
        np.testing.assert_allclose(out.numpy(), img.numpy(), atol=1e-12)


def test_errors_match_torch():
    img, grid = deepbox.randn(1, 1, 3, 3), deepbox.randn(1, 2, 2, 2)
    timg, tgrid = torch.randn(1, 1, 3, 3), torch.randn(1, 2, 2, 2)
    for kw, exc in ((dict(mode="cubic"), ValueError), (dict(padding_mode="wrap"), ValueError)):
        with pytest.raises(exc):
            F.grid_sample(img, grid, **kw)
        with pytest.raises(exc):
            torch.nn.functional.grid_sample(timg, tgrid, **kw)
    with pytest.raises(RuntimeError):
        F.grid_sample(img, deepbox.randn(2, 2, 2, 2))
    with pytest.raises(RuntimeError):
        torch.nn.functional.grid_sample(timg, torch.randn(2, 2, 2, 2))
    with pytest.raises(ValueError):
        F.affine_grid(deepbox.randn(1, 3, 3), (1, 1, 2, 2))
    with pytest.raises(ValueError):
        torch.nn.functional.affine_grid(torch.randn(1, 3, 3), (1, 1, 2, 2))


def test_spatial_transformer_learns_a_shift():
    """theta starts at the identity; gradient descent through grid_sample finds the shift that maps the image
    onto its shifted copy."""
    deepbox.manual_seed(0)
    x = np.zeros((1, 1, 12, 12))
    x[0, 0, 4:8, 3:6] = 1.0
    from scipy.ndimage import gaussian_filter

    img = deepbox.tensor(gaussian_filter(x, 1.0))
    target_theta = deepbox.tensor([[[1.0, 0.0, 0.3], [0.0, 1.0, -0.2]]], dtype=deepbox.float64)
    target = F.grid_sample(img, F.affine_grid(target_theta, (1, 1, 12, 12), align_corners=False),
                           align_corners=False)
    theta = deepbox.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=deepbox.float64, requires_grad=True)
    opt = deepbox.optim.Adam([theta], lr=0.02)
    for _ in range(200):
        out = F.grid_sample(img, F.affine_grid(theta, (1, 1, 12, 12), align_corners=False), align_corners=False)
        loss = ((out - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(theta.detach().numpy()[0, :, 2], [0.3, -0.2], atol=0.03)

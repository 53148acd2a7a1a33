"""Sampling an image at arbitrary points: ``grid_sample``'s bilinear and nearest interpolation.

For each output location a grid gives a point (x, y) in [-1, 1]^2 of the input image (x along
the width). The point is mapped to pixel coordinates, folded back into the image by the padding
mode, and the output is the bilinear blend of the four pixels around it:

    out = w00 I[y0, x0] + w01 I[y0, x1] + w10 I[y1, x0] + w11 I[y1, x1],   w01 = (1 - dy) dx, ...

Backward: the input's gradient scatters ``grad * w`` back to the four pixels; the grid's
gradient is the image's slope between those pixels (d out / d x = (1 - dy)(I[y0,x1] - I[y0,x0])
+ dy (I[y1,x1] - I[y1,x0])), times the derivative of the coordinate mapping.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function

xp = backend.xp

__all__ = ["GridSample2dFn", "source_index"]


def _reflect(coord, twice_low, twice_high):
    """Fold coordinates into [twice_low / 2, twice_high / 2] by reflecting at the edges; also d fold / d coord."""
    if twice_low == twice_high:
        return xp.zeros_like(coord), xp.zeros_like(coord)
    low = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    shifted = coord - low
    sign = xp.where(shifted < 0, -1.0, 1.0)
    a = xp.abs(shifted)
    extra = xp.fmod(a, span)
    flips = xp.floor(a / span)
    even = (flips % 2) == 0
    out = xp.where(even, extra + low, span - extra + low)
    return out, xp.where(even, sign, -sign)


def _clip(coord, size):
    """Clamp to [0, size - 1]; the derivative is 0 at and beyond the edges (as PyTorch)."""
    inside = (coord > 0) & (coord < size - 1)
    return xp.clip(coord, 0, size - 1), inside.astype(coord.dtype)


def source_index(coord, size: int, padding_mode: str, align_corners: bool):
    """Normalised [-1, 1] coordinates -> pixel coordinates after padding, and their derivative."""
    if align_corners:
        scale = (size - 1) / 2.0
        pix = (coord + 1) * scale
    else:
        scale = size / 2.0
        pix = ((coord + 1) * size - 1) / 2.0
    grad = xp.full_like(pix, scale)
    if padding_mode == "border":
        pix, g = _clip(pix, size)
        grad = grad * g
    elif padding_mode == "reflection":
        if align_corners:
            pix, g = _reflect(pix, 0, 2 * (size - 1))
        else:
            pix, g = _reflect(pix, -1, 2 * size - 1)
        grad = grad * g
        pix, g = _clip(pix, size)
        grad = grad * g
    return pix, grad


class GridSample2dFn(Function):
    """``F.grid_sample`` on (N, C, H, W) images and (N, Ho, Wo, 2) grids."""

    @staticmethod
    def forward(ctx, img, grid, mode, padding_mode, align_corners):
        N, C, H, W = img.shape
        ix, gx = source_index(grid[..., 0].astype(img.dtype), W, padding_mode, align_corners)
        iy, gy = source_index(grid[..., 1].astype(img.dtype), H, padding_mode, align_corners)
        ctx.save_for_backward(img, grid)
        ctx.meta = (mode, ix, iy, gx, gy)
        flat = img.reshape(N, C, H * W)
        n = xp.arange(N)[:, None]
        if mode == "nearest":
            xr, yr = xp.rint(ix).astype(xp.int64), xp.rint(iy).astype(xp.int64)  # half to even, as PyTorch
            ok = (xr >= 0) & (xr < W) & (yr >= 0) & (yr < H)
            idx = (xp.clip(yr, 0, H - 1) * W + xp.clip(xr, 0, W - 1)).reshape(N, -1)
            vals = flat.transpose(0, 2, 1)[n, idx] * ok.reshape(N, -1, 1)
            return xp.ascontiguousarray(vals.transpose(0, 2, 1).reshape((N, C) + ix.shape[1:]))
        out = xp.zeros((N, ix.shape[1] * ix.shape[2], C), dtype=img.dtype)
        for idx, w, _, _ in _corners(ix, iy, H, W):
            out += flat.transpose(0, 2, 1)[n, idx] * w[..., None]
        return xp.ascontiguousarray(out.transpose(0, 2, 1).reshape((N, C) + ix.shape[1:]))

    @staticmethod
    def backward(ctx, grad):
        img, grid = ctx.saved_tensors
        mode, ix, iy, gx, gy = ctx.meta
        N, C, H, W = img.shape
        g = grad.reshape(N, C, -1).transpose(0, 2, 1)  # (N, P, C)
        grad_img = grad_grid = None
        if mode == "nearest":
            if ctx.needs_input_grad[0]:
                xr, yr = xp.rint(ix).astype(xp.int64), xp.rint(iy).astype(xp.int64)
                ok = ((xr >= 0) & (xr < W) & (yr >= 0) & (yr < H)).reshape(N, -1)
                idx = (xp.clip(yr, 0, H - 1) * W + xp.clip(xr, 0, W - 1)).reshape(N, -1)
                acc = xp.zeros((N, H * W, C), dtype=img.dtype)
                xp.add.at(acc, (xp.arange(N)[:, None], idx), g * ok[..., None])
                grad_img = acc.transpose(0, 2, 1).reshape(img.shape)
            return grad_img, (xp.zeros_like(grid) if ctx.needs_input_grad[1] else None), None, None, None
        flat = img.reshape(N, C, H * W).transpose(0, 2, 1)  # (N, HW, C)
        n = xp.arange(N)[:, None]
        acc = xp.zeros((N, H * W, C), dtype=img.dtype) if ctx.needs_input_grad[0] else None
        dx = xp.zeros(ix.shape, dtype=img.dtype).reshape(N, -1)
        dy = xp.zeros_like(dx)
        for idx, w, wdx, wdy in _corners(ix, iy, H, W):
            if acc is not None:
                xp.add.at(acc, (n, idx), g * w[..., None])
            if ctx.needs_input_grad[1]:
                gv = (g * flat[n, idx]).sum(-1)  # sum over channels of grad * pixel value
                dx += gv * wdx
                dy += gv * wdy
        if acc is not None:
            grad_img = acc.transpose(0, 2, 1).reshape(img.shape)
        if ctx.needs_input_grad[1]:
            grad_grid = xp.stack([dx.reshape(ix.shape) * gx, dy.reshape(iy.shape) * gy], -1).astype(grid.dtype)
        return grad_img, grad_grid, None, None, None


def _corners(ix, iy, H, W):
    """The four pixels around each point: flat index (N, P), bilinear weight, and the weight's d/dx and d/dy.

    A corner outside the image gets weight 0 (zeros padding; border and reflection never go outside).
    """
    N = ix.shape[0]
    x0 = xp.floor(ix)
    y0 = xp.floor(iy)
    tx = ix - x0
    ty = iy - y0
    for cy, cx, wy, wx, dwy, dwx in ((0, 0, 1 - ty, 1 - tx, -1.0, -1.0), (0, 1, 1 - ty, tx, -1.0, 1.0),
                                     (1, 0, ty, 1 - tx, 1.0, -1.0), (1, 1, ty, tx, 1.0, 1.0)):
        xs = x0 + cx
        ys = y0 + cy
        ok = ((xs >= 0) & (xs < W) & (ys >= 0) & (ys < H)).astype(ix.dtype)
        idx = (xp.clip(ys, 0, H - 1) * W + xp.clip(xs, 0, W - 1)).astype(xp.int64).reshape(N, -1)
        w = (wy * wx * ok).reshape(N, -1)
        wdx = (wy * dwx * ok).reshape(N, -1)
        wdy = (dwy * wx * ok).reshape(N, -1)
        yield idx, w, wdx, wdy


def _linspace_grid(n: int, align_corners: bool, dtype):
    """Pixel centres of n pixels in [-1, 1] coordinates (the corners' centres at +-1 when align_corners)."""
    if n <= 1:
        return xp.zeros(max(n, 0), dtype=dtype)
    steps = xp.linspace(-1.0, 1.0, n, dtype=xp.float64)
    return (steps if align_corners else steps * (n - 1) / n).astype(dtype)


def affine_grid(theta, size, align_corners: bool | None = None):
    """The sampling grid of the affine maps ``theta`` (N, 2, 3) for an output of ``size`` (N, C, H, W).

    Each output pixel's normalised coordinates (x, y, 1) times theta^T: a differentiable function
    of theta, so a spatial transformer learns its transformation through ``grid_sample``.
    """
    from deepbox.tensor import Tensor, _make

    if align_corners is None:
        align_corners = False
    if not isinstance(theta, Tensor) or theta._data.dtype.kind != "f":
        raise ValueError("Expected theta to have floating point type")
    size = tuple(int(s) for s in size)
    if len(size) != 4:
        raise NotImplementedError(f"affine_grid only supports 4D sizes, for 2D affine transformations; got {size}")
    N, _, H, W = size
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3):
        raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {list(size)}. Got "
                         f"{list(theta.shape)}.")
    if theta.shape[0] != N:
        raise ValueError(f"affine_grid: theta has batch size {theta.shape[0]} but size asks for {N}")
    dt = theta._data.dtype
    base = xp.ones((H, W, 3), dtype=dt)
    base[..., 0] = _linspace_grid(W, align_corners, dt)[None, :]
    base[..., 1] = _linspace_grid(H, align_corners, dt)[:, None]
    grid = _make(base.reshape(1, H * W, 3)) @ theta.transpose(1, 2)  # (N, H*W, 2)
    return grid.reshape(N, H, W, 2)


def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros", align_corners: bool | None = None):
    """Sample ``input`` (N, C, H, W) at the points of ``grid`` (N, Ho, Wo, 2) in [-1, 1] coordinates."""
    from deepbox.tensor import Tensor

    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError("nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if mode == "bicubic":
        raise NotImplementedError("deepbox's grid_sample supports mode='bilinear' and 'nearest'; 'bicubic' is "
                                  "not implemented")
    if not isinstance(input, Tensor) or not isinstance(grid, Tensor):
        raise TypeError("grid_sample expects input and grid to be Tensors")
    if input.dim() == 5:
        raise NotImplementedError("deepbox's grid_sample supports 4-D inputs (N, C, H, W); volumetric (5-D) "
                                  "sampling is not implemented")
    if input.dim() != 4 or grid.dim() != 4 or grid.shape[-1] != 2:
        raise RuntimeError(f"grid_sampler(): expected 4D input and grid with last dimension 2, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if input._data.dtype != grid._data.dtype:
        raise RuntimeError(f"grid_sampler(): expected input and grid to have same dtype, but input has "
                           f"{input.dtype} and grid has {grid.dtype}")
    return GridSample2dFn.apply(input, grid, mode, padding_mode, bool(align_corners))


__all__ += ["affine_grid", "grid_sample"]

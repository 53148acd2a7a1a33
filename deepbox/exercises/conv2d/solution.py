"""Exercise 'conv2d': a 2-D convolution layer, first with loops, then with im2col and one matrix product.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check conv2d            (add --train to train LeNet-5 with your convolution)
"""
import numpy as np


# ---------------------------------------------------------------------------- part 1: loops
def conv2d_naive_forward(x, w, b, stride=1, padding=0):
    """out[n, f, i, j] = b[f] + sum over c, p, q of w[f, c, p, q] * xpad[n, c, i*stride + p, j*stride + q].

    Args:
        x: (N, C, H, W) images; w: (F, C, KH, KW) filters; b: (F,) biases.
        stride, padding: integers; xpad is x with `padding` zeros on each side of H and W.
    Returns:
        out: (N, F, HO, WO) with HO = (H + 2*padding - KH) // stride + 1 (WO likewise), and cache.
    """
    # >>> YOUR CODE (about 12 lines: loop over the output positions i, j)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w2 = w.reshape(f, -1)
    out = np.zeros((n, f, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw].reshape(n, -1)
            out[:, :, i, j] = patch @ w2.T + b
    cache = (x, w, stride, padding)
    # <<< END
    return out, cache


def conv2d_naive_backward(dout, cache):
    """dx (N, C, H, W), dw (F, C, KH, KW), db (F,) from dout (N, F, HO, WO)."""
    # >>> YOUR CODE (about 16 lines)
    x, w, stride, padding = cache
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    _, _, ho, wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w2 = w.reshape(f, -1)
    dxp = np.zeros_like(xp)
    dw2 = np.zeros_like(w2)
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * stride, i * stride + kh)
            cols = slice(j * stride, j * stride + kw)
            g = dout[:, :, i, j]                                   # (N, F)
            dw2 += g.T @ xp[:, :, rows, cols].reshape(n, -1)       # every position adds to dw
            dxp[:, :, rows, cols] += (g @ w2).reshape(n, c, kh, kw)  # overlapping windows add up
    dx = dxp[:, :, padding:padding + h, padding:padding + wd]
    dw = dw2.reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    # <<< END
    return dx, dw, db


# ---------------------------------------------------------------------------- part 2: im2col
def im2col(x, kh, kw, stride=1, padding=0):
    """Every KHxKW window of the padded x as one row: (N*HO*WO, C*KH*KW), rows in (n, i, j) order and
    columns in (c, p, q) order, so that the convolution is one matrix product with w.reshape(F, -1).T.
    """
    # >>> YOUR CODE (about 10 lines: loop over the KH*KW kernel offsets, not over positions)
    n, c, h, wd = x.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, p, q] = xp[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride]
    cols = cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)
    # <<< END
    return cols


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of im2col: add every row of cols back into the window it came from; returns (N, C, H, W)."""
    # >>> YOUR CODE (about 11 lines)
    n, c, h, wd = x_shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    c6 = cols.reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), dtype=cols.dtype)
    for p in range(kh):
        for q in range(kw):
            xp[:, :, p:p + stride * ho:stride, q:q + stride * wo:stride] += c6[:, :, p, q]
    x = xp[:, :, padding:padding + h, padding:padding + wd]
    # <<< END
    return x


def conv2d_im2col_forward(x, w, b, stride=1, padding=0):
    """The same convolution as conv2d_naive_forward, as one matrix product on im2col's rows."""
    # >>> YOUR CODE (about 7 lines)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    cols = im2col(x, kh, kw, stride, padding)
    out = (cols @ w.reshape(f, -1).T + b).reshape(n, ho, wo, f).transpose(0, 3, 1, 2)
    cache = (x.shape, cols, w, stride, padding)
    # <<< END
    return out, cache


def conv2d_im2col_backward(dout, cache):
    """dx, dw, db from dout, with two matrix products and col2im."""
    # >>> YOUR CODE (about 7 lines)
    x_shape, cols, w, stride, padding = cache
    f, _, kh, kw = w.shape
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, f)      # rows in the (n, i, j) order of cols
    dw = (d2.T @ cols).reshape(w.shape)
    db = d2.sum(axis=0)
    dx = col2im(d2 @ w.reshape(f, -1), x_shape, kh, kw, stride, padding)
    # <<< END
    return dx, dw, db

"""``deepbox.nn.functional``: stateless layers, activations and losses (``torch.nn.functional``).

Hot paths (linear, cross-entropy, batch/layer/group norm, dropout, GELU and most activations)
run as single graph nodes from ``deepbox/ops/`` (linear, loss, norm, activation, dropout), each with
its fast twin from ``deepbox/kernels/`` where one exists (``kernels.choose``); the rarer losses are composed
from tensor ops, which keeps their gradients automatic.
"""
from __future__ import annotations

import math
import warnings

import deepbox
from deepbox import backend, kernels
from deepbox.autograd.function import Function
from deepbox.autograd.grad_mode import state as _grad_state
from deepbox.ops import activation as _act
from deepbox.ops import dropout as _drop
from deepbox.ops import linear as _lin
from deepbox.ops import loss as _loss
from deepbox.ops import normalization as _norm
from deepbox.ops._common import write_out
from deepbox.ops.indexing import index_add_rows
from deepbox.ops.indexing import one_hot as _one_hot
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = [
    "linear", "bilinear", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "elu", "elu_",
    "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh", "hardtanh", "hardtanh_", "softplus", "softsign",
    "softmax", "log_softmax", "softmin", "logsigmoid", "hardsigmoid", "hardswish", "threshold", "tanhshrink",
    "softshrink", "hardshrink", "glu", "normalize", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout", "batch_norm", "layer_norm", "group_norm", "instance_norm",
    "local_response_norm", "rms_norm", "embedding", "one_hot", "mse_loss", "l1_loss", "smooth_l1_loss",
    "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss",
    "kl_div", "multi_margin_loss", "hinge_embedding_loss", "cosine_embedding_loss", "margin_ranking_loss",
    "soft_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss",
    "multilabel_soft_margin_loss", "multilabel_margin_loss", "cosine_similarity", "pairwise_distance",
]


def _t(x) -> Tensor:
    return x if isinstance(x, Tensor) else deepbox.tensor(x)


def _inplace(input: Tensor, out: Tensor) -> Tensor:
    """Emulate ``inplace=True`` when the input needs no gradient: write the result into it."""
    if input.requires_grad and _grad_state.enabled:
        return out  # keeping the graph correct matters more than saving a buffer
    input._data[...] = out._data
    input._version[0] += 1
    return input


# =========================================================================== linear
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` as one graph node.

    Shape: input ``(*, in)``, weight ``(out, in)``, bias ``(out,)``, output ``(*, out)``.
    """
    if input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(
            f"linear: input's last dimension is {input.shape[-1]} but weight has shape {tuple(weight.shape)} "
            f"(expected input of shape (*, {weight.shape[-1]}))"
        )
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"linear: mat1 and mat2 must have the same dtype, but got {input.dtype} (input) and "
                               f"{t.dtype} ({what}); convert the input (x.float()) or the layer (.to({input.dtype}))")
    if bias is None:
        return _lin.LinearFn.apply(input, weight)
    return kernels.choose(_lin.LinearFn, input, weight, bias).apply(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = input1 @ weight[k] @ input2 + bias[k]``."""
    if bias is None:
        return _lin.BilinearFn.apply(input1, input2, weight)
    return _lin.BilinearFn.apply(input1, input2, weight, bias)


# =========================================================================== activations
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    out = deepbox.relu(input)
    return _inplace(input, out) if inplace else out


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = _act.LeakyReluFn.apply(input, negative_slope=negative_slope)
    return _inplace(input, out) if inplace else out


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, True)


class _PReluFn(Function):
    @staticmethod
    def forward(ctx, x, w):
        wb = w.reshape((1, -1) + (1,) * (x.ndim - 2)) if x.ndim >= 2 and w.size > 1 else w
        pos = x > 0
        ctx.save_for_backward(x, wb, pos)
        ctx.w_shape = w.shape
        return xp.where(pos, x, wb * x)

    @staticmethod
    def backward(ctx, grad):
        x, wb, pos = ctx.saved_tensors
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = xp.where(pos, grad, grad * wb)
        if ctx.needs_input_grad[1]:
            gxw = xp.where(pos, 0, grad * x)
            if x.ndim >= 2 and len(ctx.w_shape) and ctx.w_shape[0] > 1:
                gw = gxw.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
            else:
                gw = gxw.sum().reshape(ctx.w_shape)
        return gx, gw


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``max(0, x) + weight * min(0, x)``, one weight per channel (dim 1) or one shared."""
    if weight.numel() > 1 and (input.dim() < 2 or input.shape[1] != weight.numel()):
        raise RuntimeError(
            f"prelu: mismatch of parameter numbers and input channel size: weight has {weight.numel()} "
            f"elements, input has shape {tuple(input.shape)} (channels on dim 1)"
        )
    return _PReluFn.apply(input, weight)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    a = backend.rng().uniform(lower, upper, input.shape).astype(input._data.dtype)
    slope = xp.where(input._data >= 0, xp.asarray(1, input._data.dtype), a)
    return _drop.DropoutFn.apply(input, slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    out = _act.EluFn.apply(input, alpha=alpha)
    return _inplace(input, out) if inplace else out


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    out = _act.EluFn.apply(input, alpha=_SELU_ALPHA, scale=_SELU_SCALE)
    return _inplace(input, out) if inplace else out


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    if alpha == 0:
        raise ValueError("ZeroDivisionError: alpha cannot be 0 for CELU")
    out = _act.EluFn.apply(input, alpha=alpha, beta=alpha)
    return _inplace(input, out) if inplace else out


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``; ``approximate='tanh'`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return kernels.choose(_act.GeluFn, input._data, approximate).apply(input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    out = _act.SiluFn.apply(input)
    return _inplace(input, out) if inplace else out


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    out = _act.MishFn.apply(input)
    return _inplace(input, out) if inplace else out


def sigmoid(input: Tensor) -> Tensor:
    return deepbox.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return deepbox.tanh(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError(f"min_val cannot be greater than max_val (got {min_val} > {max_val})")
    out = _act.HardtanhFn.apply(input, min_val=min_val, max_val=max_val)
    return _inplace(input, out) if inplace else out


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, True)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _act.SoftplusFn.apply(input, beta=beta, threshold=threshold)


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmax", input.dim())
    if dtype is not None:
        input = input.to(dtype)
    return input.softmax(dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("log_softmax", input.dim())
    if dtype is not None:
        input = input.to(dtype)
    return input.log_softmax(dim)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmin", input.dim())
    if dtype is not None:
        input = input.to(dtype)
    return (-input).softmax(dim)


def logsigmoid(input: Tensor) -> Tensor:
    return _act.LogSigmoidFn.apply(input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    out = _act.HardtanhFn.apply(input / 6 + 0.5, min_val=0.0, max_val=1.0)
    return _inplace(input, out) if inplace else out


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    out = input * _act.HardtanhFn.apply(input + 3, min_val=0.0, max_val=6.0) / 6
    return _inplace(input, out) if inplace else out


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    out = deepbox.where(input > threshold, input, _make(xp.asarray(value, dtype=input._data.dtype)))
    return _inplace(input, out) if inplace else out


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    zero = _make(xp.zeros((), input._data.dtype))
    return deepbox.where(input > lambd, input - lambd, deepbox.where(input < -lambd, input + lambd, zero))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    zero = _make(xp.zeros((), input._data.dtype))
    return deepbox.where((input > lambd) | (input < -lambd), input, zero)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {input.shape[dim]}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``."""
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps)
    return write_out(input / denom, out, "normalize")


# =========================================================================== dropout
def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(shape, p: float, dtype):
    """Bernoulli(1 - p) mask, already scaled by 1 / (1 - p)."""
    if p == 1.0:
        return xp.zeros(shape, dtype)
    r = backend.rng().random(shape, dtype=xp.float32 if dtype != xp.float64 else xp.float64)
    mask = (r >= p).astype(dtype)
    mask *= xp.asarray(1.0 / (1.0 - p), dtype=dtype)
    return mask


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (training only)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    out = _drop.DropoutFn.apply(input, _keep_mask(input._data.shape, p, input._data.dtype))
    return _inplace(input, out) if inplace else out


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, n_spatial: int) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    shape = input._data.shape
    mask_shape = shape[: len(shape) - n_spatial] + (1,) * n_spatial
    out = _drop.DropoutFn.apply(input, _keep_mask(mask_shape, p, input._data.dtype))
    return _inplace(input, out) if inplace else out


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` inputs."""
    if input.dim() not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.dim()}D input.")
    return _feature_dropout(input, p, training, inplace, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, H, W)`` inputs (a 3-D input is read as ``(N, C, L)``, as in PyTorch)."""
    d = input.dim()
    if d not in (3, 4):
        warnings.warn(f"dropout2d: Received a {d}-D input to dropout2d, which is deprecated. Expected 3-D or 4-D.",
                      stacklevel=2)
    if d == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L).", stacklevel=2)
        return _feature_dropout(input, p, training, inplace, 1)
    return _feature_dropout(input, p, training, inplace, max(d - 2, 0))


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    d = input.dim()
    if d not in (4, 5):
        raise RuntimeError(f"dropout3d: Expected 4D or 5D input, but received a {d}D input.")
    return _feature_dropout(input, p, training, inplace, 3)


_ALPHA_PRIME = 1.7580993408473766  # SELU's scale * alpha


def _alpha_dropout(input: Tensor, p: float, training: bool, mask_shape) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    dt = input._data.dtype
    if p == 1.0:
        return input * 0
    keep = (backend.rng().random(mask_shape) >= p).astype(dt)
    a = 1.0 / math.sqrt((_ALPHA_PRIME**2 * p + 1) * (1 - p))
    b = (keep - 1) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    out = _drop.DropoutFn.apply(input, keep * dt.type(a))
    return out + _make(b.astype(dt))


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout that keeps SELU's zero mean and unit variance."""
    return _alpha_dropout(input, p, training, input._data.shape)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    shape = input._data.shape
    return _alpha_dropout(input, p, training, shape[:2] + (1,) * (len(shape) - 2))


# =========================================================================== normalisation
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) by its batch statistics (training) or the running ones (eval).

    In training the running statistics, when given, move towards the batch's:
    ``running = (1 - momentum) * running + momentum * batch`` (the variance unbiased).
    """
    if input.dim() < 2:
        raise ValueError(f"batch_norm expects an input of at least 2 dimensions (N, C, ...), got {tuple(input.shape)}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != C:
            raise RuntimeError(f"batch_norm: {name} should contain {C} elements not {t.numel()}")
    args = [input, weight, bias]
    fn = kernels.choose(_norm.BatchNormFn, *args)
    if training:
        n = input.numel() // C
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
        stats = {} if running_mean is not None else None
        out = fn.apply(*args, eps=eps, stats=stats)
        if running_mean is not None:
            m = momentum
            bm = stats["mean"].reshape(C)
            bv = stats["var"].reshape(C) * (n / (n - 1))
            rm, rv = running_mean._data, running_var._data
            rm *= 1 - m
            rm += (m * bm).astype(rm.dtype, copy=False)
            rv *= 1 - m
            rv += (m * bv).astype(rv.dtype, copy=False)
            running_mean._version[0] += 1
            running_var._version[0] += 1
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm in eval mode (training=False) needs running_mean and running_var")
    return fn.apply(*args, eps=eps, running=(running_mean._data, running_var._data))


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample over its spatial dimensions."""
    if input.dim() < 3:
        raise ValueError(f"instance_norm expects an input of shape (N, C, *), got {tuple(input.shape)}")
    N, C = input.shape[0], input.shape[1]
    axes = tuple(range(2, input.dim()))
    wshape = (1, C) + (1,) * (input.dim() - 2)
    if use_input_stats:
        stats = {} if running_mean is not None else None
        out = _norm.NormalizeFn.apply(input, weight, bias, axes=axes, eps=eps, wshape=wshape, stats=stats)
        if running_mean is not None:
            n = input.numel() // (N * C)
            bm = stats["mean"].reshape(N, C).mean(0)
            bv = (stats["var"].reshape(N, C) * (n / max(n - 1, 1))).mean(0)
            rm, rv = running_mean._data, running_var._data
            rm *= 1 - momentum
            rm += (momentum * bm).astype(rm.dtype, copy=False)
            rv *= 1 - momentum
            rv += (momentum * bv).astype(rv.dtype, copy=False)
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("instance_norm with use_input_stats=False needs running_mean and running_var")
    return _norm.NormalizeFn.apply(input, weight, bias, axes=axes, eps=eps, wshape=wshape,
                                 mean=running_mean._data.reshape(wshape), var=running_var._data.reshape(wshape))


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    ns = tuple(normalized_shape)
    k = len(ns)
    if tuple(input.shape[input.dim() - k:]) != ns or input.dim() < k:
        raise RuntimeError(
            f"Given normalized_shape={list(ns)}, expected input with shape [*, {', '.join(map(str, ns))}], "
            f"but got input of size{list(input.shape)}"
        )
    fn = kernels.choose(_norm.LayerNormFn, input, weight, bias)
    return fn.apply(input, weight, bias, dims=k, eps=eps)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    dims = tuple(range(-len(normalized_shape), 0))
    if eps is None:
        eps = float(xp.finfo(input._data.dtype).eps)
    out = input * (input.square().mean(dims, keepdim=True) + eps).rsqrt()
    return out * weight if weight is not None else out


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Split the channels into ``num_groups`` groups and normalise each group of each sample."""
    if input.dim() < 2:
        raise RuntimeError(f"group_norm expects an input of shape (N, C, *), got {tuple(input.shape)}")
    N, C = input.shape[0], input.shape[1]
    if C % num_groups:
        raise RuntimeError(f"Expected number of channels in input ({C}) to be divisible by num_groups ({num_groups})")
    shape = tuple(input.shape)
    x = input.reshape(N, num_groups, C // num_groups, -1)
    out = _norm.NormalizeFn.apply(x, weight, bias, axes=(2, 3), eps=eps, wshape=(1, num_groups, C // num_groups, 1))
    return out.reshape(shape)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """``x / (k + alpha / size * sum of x^2 over ``size`` neighbouring channels)^beta``."""
    d = input.dim()
    if d < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {d} dimensions)")
    sq = input * input
    C = input.shape[1]
    pad_front, pad_back = size // 2, (size - 1) // 2
    zeros_f = deepbox.zeros((input.shape[0], pad_front) + tuple(input.shape[2:]), dtype=input.dtype)
    zeros_b = deepbox.zeros((input.shape[0], pad_back) + tuple(input.shape[2:]), dtype=input.dtype)
    padded = deepbox.cat([zeros_f, sq, zeros_b], 1)
    acc = padded.narrow(1, 0, C)
    for i in range(1, size):
        acc = acc + padded.narrow(1, i, C)
    div = (acc * (alpha / size) + k) ** beta
    return input / div


# =========================================================================== embedding
class _EmbeddingFn(Function):
    @staticmethod
    def forward(ctx, weight, idx, *, padding_idx=None, scale_grad_by_freq=False):
        ctx.save_for_backward(idx)
        ctx.w_shape = weight.shape
        ctx.w_dtype = weight.dtype
        ctx.padding_idx = padding_idx
        ctx.scale = scale_grad_by_freq
        out = weight[idx]
        # the scatter-add that backward runs: the reference's sort, or its compiled twin
        ctx.add_rows = kernels.choose(index_add_rows, weight.shape[0], idx.reshape(-1),
                                      out.reshape(idx.size, weight.shape[1]))
        return out

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        flat = idx.reshape(-1)
        g = grad.reshape(-1, ctx.w_shape[1])
        if ctx.scale:
            counts = xp.bincount(flat, minlength=ctx.w_shape[0])
            g = g / counts[flat][:, None]
        gw = ctx.add_rows(ctx.w_shape[0], flat, g)
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return gw, None


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer indices in ``input``; output ``(*input.shape, dim)``."""
    idx = input._data if isinstance(input, Tensor) else xp.asarray(input)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have an integer dtype; got {idx.dtype}")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: 'weight' must be 2-D, got shape {tuple(weight.shape)}")
    n = weight.shape[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"embedding: index out of range (indices must be in [0, {n - 1}], got "
                         f"min {int(idx.min())}, max {int(idx.max())})")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if max_norm is not None:
        # renormalise the rows that are looked up, in place and outside the graph (as in PyTorch)
        w = weight._data
        rows = xp.unique(idx.reshape(-1) % n)
        norms = xp.linalg.norm(w[rows].astype(xp.float64), ord=norm_type, axis=1)
        big = norms > max_norm
        if big.any():
            scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
            w[rows[big]] *= scale[:, None]
            weight._version[0] += 1
    return _EmbeddingFn.apply(weight, idx % n if idx.size and idx.min() < 0 else idx, padding_idx=padding_idx,
                              scale_grad_by_freq=scale_grad_by_freq)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    return _one_hot(tensor, num_classes)


# =========================================================================== losses
def _reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"{reduction} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                  + ("none" if not reduce else "mean" if size_average else "sum") + "' instead.", stacklevel=3)
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_same_size(input: Tensor, target: Tensor, name: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}) in "
            f"{name}. This will likely lead to incorrect results due to broadcasting. Please ensure they have "
            "the same size.", stacklevel=3)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``(input - target)^2``."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_same_size(input, target, "mse_loss")
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    """Mean absolute error ``|input - target|``."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_same_size(input, target, "l1_loss")
    loss = (input - target).abs()
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_same_size(input, target, "smooth_l1_loss")
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = (input - target).abs()
    if beta == 0:
        return _apply_reduction(d, reduction)
    loss = deepbox.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _apply_reduction(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    _check_same_size(input, target, "huber_loss")
    d = (input - target).abs()
    loss = deepbox.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, _reduction(None, None, reduction))


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """``-w (y log x + (1 - y) log(1 - x))`` on probabilities ``x``; each log clamped at -100."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if weight is None:
        return _loss.BCEFn.apply(input, target, reduction=reduction)
    return _loss.BCEFn.apply(input, target, weight, reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step (log-sum-exp), optionally weighting positives."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    return _loss.BCEWithLogitsFn.apply(input, target, weight, pos_weight, reduction=reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` and class indices or class probabilities ``target``.

    Shape:
        input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; target ``(N,)`` / ``()`` / ``(N, d1, ...)`` of
        class indices, or the input's shape of probabilities.

    Runs as one fused node (log-softmax + NLL) that stays finite for logits of any size.
    """
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.dim() == 0:
        raise ValueError("cross_entropy expects an input with a class dimension, got a 0-d tensor")
    C = input.shape[1] if input.dim() > 1 else input.shape[0]
    w = None
    if weight is not None:
        if weight.dim() != 1 or weight.shape[0] != C:
            raise RuntimeError(f"cross_entropy: weight should be a 1D tensor of {C} elements, got shape "
                               f"{tuple(weight.shape)}")
        w = weight._data
    if target.is_floating_point():
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"cross_entropy: probability targets must have the input's shape {tuple(input.shape)}, "
                               f"got {tuple(target.shape)}")
        return _loss.CrossEntropyProbFn.apply(input, target, w, label_smoothing=label_smoothing, reduction=reduction)
    fn = kernels.choose(_loss.CrossEntropyFn, input, target, w, label_smoothing)
    return fn.apply(input, target, w, ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices ``target`` given log-probabilities ``input``."""
    reduction = _reduction(size_average, reduce, reduction)
    if target.is_floating_point():
        raise RuntimeError(f"nll_loss expects class indices (an integer target), got dtype {target.dtype}")
    w = weight._data if weight is not None else None
    return _loss.NLLFn.apply(input, target, w, ignore_index=ignore_index, reduction=reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """``target * (log target - input)`` with ``input`` log-probabilities; use ``reduction='batchmean'``
    for the mathematical KL divergence."""
    if reduction == "batchmean":
        red = "sum"
    else:
        red = _reduction(size_average, reduce, reduction)
        if red == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                          "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                          "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                          stacklevel=2)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        zero = _make(xp.zeros((), target._data.dtype))
        safe = deepbox.where(target > 0, target, _make(xp.ones((), target._data.dtype)))
        loss = deepbox.where(target > 0, target * (safe.log() - input), zero)
    out = _apply_reduction(loss, red)
    if reduction == "batchmean" and input.dim() != 0:
        out = out / input.shape[0]
    return out


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss: ``sum_{j != y} max(0, margin - x[y] + x[j])^p / C``."""
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input if input.dim() == 2 else input.reshape(1, -1)
    t = target.reshape(-1)
    C = x.shape[1]
    xy = x.gather(1, t.reshape(-1, 1))
    m = (x - xy + margin).clamp_min(0)
    if p == 2:
        m = m * m
    if weight is not None:
        m = m * _make(weight._data[t._data]).reshape(-1, 1)
    not_y = _make(xp.arange(C)[None, :] != t._data[:, None])
    loss = (m * not_y).sum(1) / C
    if input.dim() < 2:
        loss = loss.reshape(())
    return _apply_reduction(loss, reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """``x`` where ``y == 1``, ``max(0, margin - x)`` where ``y == -1``."""
    reduction = _reduction(size_average, reduce, reduction)
    zero = _make(xp.zeros((), input._data.dtype))
    margin_clamp = (margin - input).clamp_min(0)
    out_margin = deepbox.where(target != 1, margin_clamp, zero)
    out_self = deepbox.where(target != -1, input, zero)
    return _apply_reduction(out_margin + out_self, reduction)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / max(||x1|| ||x2||, eps)`` along ``dim``."""
    w12 = (x1 * x2).sum(dim)
    n1 = (x1 * x1).sum(dim)
    n2 = (x2 * x2).sum(dim)
    return w12 / (n1 * n2).clamp_min(eps * eps).sqrt()


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where ``y == 1``, ``max(0, cos(x1, x2) - margin)`` where ``y == -1``."""
    reduction = _reduction(size_average, reduce, reduction)
    eps = 1e-12
    dim = input1.dim() - 1
    prod_sum = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + eps
    mag2 = (input2 * input2).sum(dim) + eps
    cos = prod_sum / (mag1 * mag2).sqrt()
    zero = _make(xp.zeros((), cos._data.dtype))
    pos = deepbox.where(target == 1, 1 - cos, zero)
    neg = deepbox.where(target == -1, (cos - margin).clamp_min(0), zero)
    return _apply_reduction(pos + neg, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    return _apply_reduction((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    return _apply_reduction(softplus(-target * input), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.dim() - 1) / input.shape[-1]
    return _apply_reduction(loss, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    x = input if input.dim() == 2 else input.reshape(1, -1)
    t = target._data.reshape(x.shape)
    N, C = x.shape
    is_target = xp.zeros((N, C), bool)
    valid = xp.zeros((N, C), bool)
    for i in range(N):
        for j in range(C):
            if t[i, j] < 0:
                break
            is_target[i, t[i, j]] = True
            valid[i, j] = True
    tidx = xp.where(valid, t, 0)
    xt = x.gather(1, _make(tidx.astype(xp.int64)))  # (N, C): x[target_j]
    # sum over target j and non-target i of max(0, 1 - (x[t_j] - x[i]))
    diff = (1 - (xt.unsqueeze(2) - x.unsqueeze(1))).clamp_min(0)
    mask = _make((valid[:, :, None] & ~is_target[:, None, :]).astype(x._data.dtype))
    loss = (diff * mask).sum((1, 2)) / C
    if input.dim() < 2:
        loss = loss.reshape(())
    return _apply_reduction(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        t = target._data
        stirling = xp.where(t > 1, t * xp.log(xp.where(t > 1, t, 1)) - t + 0.5 * xp.log(2 * math.pi * xp.where(
            t > 1, t, 1)), 0).astype(t.dtype)
        loss = loss + _make(stirling)
    return _apply_reduction(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    if not isinstance(var, Tensor):
        var = deepbox.full_like(input, float(var))
    if var.dim() == input.dim() - 1 and var.shape == input.shape[:-1]:
        var = var.unsqueeze(-1)
    if (var._data < 0).any():
        raise ValueError("var has negative entry/entries")
    with deepbox.no_grad():
        clamped = _make(xp.maximum(var._data, eps) - var._data)
    v = var + clamped  # clamp(min=eps) with the gradient of the unclamped variance, as in PyTorch
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _apply_reduction(loss, _reduction(None, None, reduction))


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = deepbox.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _apply_reduction((d_pos - d_neg + margin).clamp_min(0), reduction)


from deepbox.ops.conv import *  # noqa: F401,F403,E402,I001  conv1d, conv2d, conv_transpose2d, unfold, fold
from deepbox.ops.pool import *  # noqa: F401,F403,E402  pooling, interpolate, pixel_shuffle
from deepbox.ops.attention import *  # noqa: F401,F403,E402  scaled_dot_product_attention
from deepbox.ops.movement import pad  # noqa: F401,E402  F.pad is the core pad op (constant/reflect/replicate/circular)
from deepbox.ops.sampling import affine_grid, grid_sample  # noqa: F401,E402

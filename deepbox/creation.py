"""Creating tensors: from data, filled, ranges and random draws, with PyTorch's names and defaults."""
from __future__ import annotations

import math
import operator

from deepbox import backend
from deepbox.ops._common import _TORCH_NAMES, write_out
from deepbox.tensor import Tensor, _check_device, _make, _to_array

xp = backend.xp


def _finish(arr, requires_grad=False, device=None):
    if device is not None:
        _check_device(device)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    try:
        out = tuple(operator.index(s) for s in size)
    except TypeError:
        raise TypeError(f"size must be a sequence of ints, got {size!r}") from None
    for s in out:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(out)}")
    return out


def _shape_arg(shape, size, name):
    """The shape of a factory called as ``f(2, 3)``, ``f((2, 3))`` or ``f(size=(2, 3))`` (PyTorch takes all three)."""
    if size is not None:
        if shape:
            raise TypeError(f"{name}() got the size both as positional arguments {shape} and as size={size!r}")
        shape = (size,)
    return _size(shape)


def _float_dtype(dtype):
    return backend.to_numpy_dtype(dtype) if dtype is not None else backend.default_float_np()


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (floats -> float32, ints -> int64, as in PyTorch)."""
    if isinstance(data, Tensor):
        arr = data._data.copy() if dtype is None else data._data.astype(backend.to_numpy_dtype(dtype))
    else:
        arr = _to_array(data, dtype, copy=True)
    return _finish(arr, requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array or tensor where the dtype allows."""
    if isinstance(data, Tensor):
        return data if dtype is None or backend.to_numpy_dtype(dtype) == data._data.dtype else data.to(dtype)
    return _finish(_to_array(data, dtype), False, device)


asarray = as_tensor


def from_numpy(ndarray) -> Tensor:
    if not isinstance(ndarray, backend.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return _make(_to_array(ndarray))


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    arr = xp.zeros(_shape_arg(shape, size, "zeros"), _float_dtype(dtype))
    return write_out(_finish(arr, requires_grad, device), out, "zeros")


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    arr = xp.ones(_shape_arg(shape, size, "ones"), _float_dtype(dtype))
    return write_out(_finish(arr, requires_grad, device), out, "ones")


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False, memory_format=None, out=None) -> Tensor:
    arr = xp.empty(_shape_arg(shape, size, "empty"), _float_dtype(dtype))
    return write_out(_finish(arr, requires_grad, device), out, "empty")


def _fill_dtype(value, dtype):
    if dtype is not None:
        return backend.to_numpy_dtype(dtype)
    if isinstance(value, bool):
        return xp.dtype(xp.bool_)
    if isinstance(value, int):
        return xp.dtype(xp.int64)
    return backend.default_float_np()


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _finish(xp.full(_size((size,)), fill_value, _fill_dtype(fill_value, dtype)), requires_grad, device)


def _like_dtype(input, dtype):
    return backend.to_numpy_dtype(dtype) if dtype is not None else input._data.dtype


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _finish(xp.zeros(input._data.shape, _like_dtype(input, dtype)), requires_grad, device)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _finish(xp.ones(input._data.shape, _like_dtype(input, dtype)), requires_grad, device)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _finish(xp.empty(input._data.shape, _like_dtype(input, dtype)), requires_grad, device)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return _finish(xp.full(input._data.shape, fill_value, _like_dtype(input, dtype)), requires_grad, device)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    return rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad, generator=generator)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    return randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad, generator=generator)


def randint_like(input, low=0, high=None, *, dtype=None, generator=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, generator=generator)


def arange(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    _no_bool(dtype, "arange")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign (start={start}, "
                           f"end={end}, step={step})")
    if dtype is None:
        is_int = all(isinstance(v, int) for v in vals)
        nd = xp.dtype(xp.int64) if is_int else backend.default_float_np()
    else:
        nd = backend.to_numpy_dtype(dtype)
    n = max(math.ceil((end - start) / step), 0)
    # computed in float64 then cast, like PyTorch: start + i * step
    arr = (start + xp.arange(n, dtype=xp.float64) * step) if nd.kind == "f" else xp.arange(start, end, step)
    return _finish(arr.astype(nd), requires_grad, device)


def range_(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``deepbox.range``: like arange but includes ``end`` (deprecated in PyTorch)."""
    n = int(math.floor((end - start) / step)) + 1
    return _finish((start + xp.arange(n) * step).astype(_float_dtype(dtype)), requires_grad, device)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    _no_bool(dtype, "linspace")
    return _finish(xp.linspace(start, end, int(steps)).astype(_float_dtype(dtype)), requires_grad, device)


def _no_bool(dtype, name):
    if dtype is not None and backend.to_numpy_dtype(dtype).kind == "b":
        raise NotImplementedError(f'"{name}_cpu" not implemented for \'Bool\': a range of booleans is not defined')


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    _no_bool(dtype, "logspace")
    return _finish((base ** xp.linspace(start, end, int(steps))).astype(_float_dtype(dtype)), requires_grad, device)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    return _finish(xp.eye(n, m if m is not None else n, dtype=_float_dtype(dtype)), requires_grad, device)


def rand(*shape, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) (a complex dtype: both parts). deepbox's stream differs from PyTorch's."""
    nd = _float_dtype(dtype)
    shape = _shape_arg(shape, size, "rand")
    if nd.kind == "c":
        return _finish(_complex_parts(backend.rng(generator).random, shape, nd), requires_grad, device)
    arr = backend.rng(generator).random(shape, dtype=xp.float64 if nd == xp.float64 else xp.float32)
    return _finish(arr.astype(nd, copy=False), requires_grad, device)


def _complex_parts(draw, size, nd):
    """Complex samples of dtype ``nd`` whose real and imaginary parts are independent draws."""
    parts = draw(tuple(size) + (2,), dtype=backend.real_of(nd))  # (..., 2) pairs read as complex numbers
    return parts.view(nd)[..., 0]


def randn(*shape, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples (a complex dtype: variance 1, half in each part, as in PyTorch). deepbox's
    stream differs from PyTorch's for the same seed."""
    nd = _float_dtype(dtype)
    shape = _shape_arg(shape, size, "randn")
    if nd.kind == "c":
        z = _complex_parts(backend.rng(generator).standard_normal, shape, nd)
        return _finish(z * backend.real_of(nd).type(0.5 ** 0.5), requires_grad, device)
    arr = backend.rng(generator).standard_normal(shape, dtype=xp.float64 if nd == xp.float64 else xp.float32)
    return _finish(arr.astype(nd, copy=False), requires_grad, device)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:  # randint(high, size=...)
        low, high = 0, low
    if high is None or size is None:
        raise TypeError("randint() expects (high, size) or (low, high, size)")
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    nd = backend.to_numpy_dtype(dtype) if dtype is not None else xp.dtype(xp.int64)
    arr = backend.rng(generator).integers(low, high, _size((size,)))
    return _finish(arr.astype(nd), requires_grad, device)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    nd = backend.to_numpy_dtype(dtype) if dtype is not None else xp.dtype(xp.int64)
    return _finish(backend.rng(generator).permutation(int(n)).astype(nd), requires_grad, device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Normal samples; ``mean``/``std`` may be tensors (broadcast) or numbers with ``size``."""
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    if size is None:
        if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
            raise TypeError("normal() needs `size` when mean and std are numbers")
        shape = xp.broadcast_shapes(xp.shape(m), xp.shape(s))
    else:
        shape = _size((size,))
    if isinstance(s, (int, float)) and s < 0 or (isinstance(s, backend.ndarray) and (s < 0).any()):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    nd = _float_dtype(dtype) if dtype is not None else (
        m.dtype if isinstance(m, backend.ndarray) else (s.dtype if isinstance(s, backend.ndarray)
                                                          else backend.default_float_np()))
    arr = m + s * backend.rng(generator).standard_normal(shape)
    return _finish(xp.asarray(arr).astype(nd), requires_grad, device)


def bernoulli(input, p=None, *, generator=None, out=None) -> Tensor:
    """0/1 samples in ``input``'s dtype: 1 with probability ``input`` (or ``p``) elementwise. Not differentiable."""
    a = input._data
    if a.dtype.kind != "f":
        raise NotImplementedError(f'"bernoulli_tensor_cpu_p_" not implemented for \'{_TORCH_NAMES[a.dtype.name]}\'')
    probs = a if p is None else xp.full(a.shape, p)
    if ((probs < 0) | (probs > 1)).any() or xp.isnan(probs).any():
        raise RuntimeError("bernoulli: every probability must be in [0, 1] (Expected p_in >= 0 && p_in <= 1 to be "
                           "true, but got false.)")
    return write_out(_make((backend.rng(generator).random(probs.shape) < probs).astype(a.dtype)), out, "bernoulli")


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None) -> Tensor:
    """``num_samples`` category indices per row of the (unnormalised) probabilities ``input`` (1-D or 2-D).

    Without replacement each draw is the largest of p_i / E_i over the categories left (E_i independent
    exponentials): the same distribution as drawing one by one and removing what was drawn, as PyTorch
    does; categories of probability 0 come last, in order, once the others are used up.
    """
    a = input._data
    if a.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{_TORCH_NAMES[a.dtype.name]}")
    if a.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    rows = xp.asarray(a, dtype=xp.float64).reshape(-1, a.shape[-1])
    if (rows < 0).any() or not xp.isfinite(rows).all():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    sums = rows.sum(axis=1, keepdims=True)
    if (sums <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    rng = backend.rng(generator)
    if replacement:
        cdf = xp.cumsum(rows / sums, axis=1)
        u = rng.random((rows.shape[0], num_samples))
        picks = [xp.searchsorted(c, v, side="right") for c, v in zip(cdf, u)]
        # a u above a row's rounded total falls past the end: it belongs to the last category that can occur
        last = rows.shape[1] - 1 - xp.argmax(rows[:, ::-1] > 0, axis=1)
        samples = xp.minimum(xp.stack(picks), last[:, None])
    else:
        keys = rows / rng.exponential(1.0, rows.shape)
        samples = xp.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    result = _make(samples.reshape(a.shape[:-1] + (num_samples,)).astype(xp.int64))
    return write_out(result, out, "multinomial")


def scalar_tensor(value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(xp.asarray(value, dtype=_float_dtype(dtype)), requires_grad, device)


def _indices_dtype(dtype, name):
    nd = backend.to_numpy_dtype(dtype) if dtype is not None else xp.dtype(xp.int64)
    if nd.kind not in "iu":
        raise NotImplementedError(f'"{name}" not implemented for \'{_TORCH_NAMES[nd.name]}\'')
    return nd


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The (row, column) indices of the lower triangle of a row x col matrix, as a (2, N) tensor."""
    nd = _indices_dtype(dtype, "tril_indices")
    return _finish(xp.stack(xp.tril_indices(row, offset, col)).reshape(2, -1).astype(nd), False, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The (row, column) indices of the upper triangle of a row x col matrix, as a (2, N) tensor."""
    nd = _indices_dtype(dtype, "triu_indices")
    return _finish(xp.stack(xp.triu_indices(row, offset, col)).reshape(2, -1).astype(nd), False, device)


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    n = len(tensors)
    shapes = [t.shape[0] for t in tensors]
    if indexing == "xy" and n >= 2:
        shapes[0], shapes[1] = shapes[1], shapes[0]
    out = []
    for i, t in enumerate(tensors):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        view = [1] * n
        view[pos] = -1
        out.append(t.reshape(view).expand(shapes))
    return tuple(out)

"""Movement ops: reshape, permute, expand, cat/stack/split, flip/roll, pad, tril/triu.

The view ops (reshape, permute, squeeze, expand, ...) return NumPy views where
NumPy can, and then share the input's version counter, as PyTorch views share
their base's storage.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops._common import _as_tensor, _one_axis, _promote_all, write_out
from deepbox.ops.elementwise import mul
from deepbox.ops.indexing import getitem, index_put, index_select
from deepbox.tensor import Size, Tensor, _make

xp = backend.xp


def _shape_arg(shape):
    """Accept ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or ``f(Size)``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _infer_shape(shape, numel, input_shape):
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if neg:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n != numel:
        raise RuntimeError(
            f"shape '{list(shape)}' is invalid for input of size {numel} (input shape {list(input_shape)})")
    return shape


class Reshape(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    _is_view = True

    @staticmethod
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


def reshape(input, *shape):
    x = _as_tensor(input)
    shape = _infer_shape(_shape_arg(shape), x._data.size, x._data.shape)
    if shape == x._data.shape:
        return Reshape.apply(x, shape)
    return Reshape.apply(x, shape)


def view(input, *shape):
    """Like ``reshape`` but, as in PyTorch, refuses when the result could not share the input's memory."""
    x = _as_tensor(input)
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)) and not hasattr(shape[0], "__index__"):
        return _view_dtype(x, backend.to_numpy_dtype(shape[0]))
    shape = _infer_shape(_shape_arg(shape), x._data.size, x._data.shape)
    a = x._data
    if a.size and not a.flags.c_contiguous:
        try:
            v = a.view()
            v.shape = shape  # raises when a copy would be needed
        except AttributeError:
            raise RuntimeError(
                f"view size is not compatible with input tensor's size and stride (shape {list(a.shape)}): at least "
                "one dimension spans across two contiguous subspaces. Use .reshape(...) instead."
            ) from None
    return Reshape.apply(x, shape)


def _view_dtype(x, nd):
    """``view(dtype)``: the same bytes read as another dtype, outside the graph (as in PyTorch).

    With a different element size the last dimension shrinks or grows by the size ratio; it must
    then be contiguous (stride 1) and, when growing the element, divisible by the ratio.
    """
    a = x._data
    src = backend.from_numpy_dtype(a.dtype).name.capitalize()
    dst = backend.from_numpy_dtype(nd).name.capitalize()
    if nd.itemsize != a.itemsize:
        what = f"to view {src} as {dst} (different element sizes)"
        if a.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 {what}")
        if a.shape[-1] != 1 and a.strides[-1] != a.itemsize:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {a.strides[-1] // a.itemsize}")
        if nd.itemsize > a.itemsize and (a.shape[-1] * a.itemsize) % nd.itemsize:
            raise RuntimeError(f"self.size(-1) must be divisible by {nd.itemsize // a.itemsize} {what}, but got "
                               f"{a.shape[-1]}")
        if a.shape[-1] == 1 and a.strides[-1] != a.itemsize:
            a = a[..., 0:1].copy() if not a.size else xp.lib.stride_tricks.as_strided(
                a, a.shape, a.strides[:-1] + (a.itemsize,))
    v = a.view(nd) if a.size else xp.empty(a.shape[:-1] + (a.shape[-1] * a.itemsize // nd.itemsize,)
                                           if a.ndim else (), nd)
    t = _make(v)
    t._version = x._version
    return t


def flatten(input, start_dim=0, end_dim=-1):
    x = _as_tensor(input)
    if x.ndim == 0:
        return reshape(x, (1,))
    s = _one_axis(start_dim, x.ndim)
    e = _one_axis(end_dim, x.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    sh = x._data.shape
    n = 1
    for d in sh[s:e + 1]:
        n *= d
    return reshape(x, sh[:s] + (n,) + sh[e + 1:])


def unflatten(input, dim, sizes):
    x = _as_tensor(input)
    d = _one_axis(dim, x.ndim)
    sh = x._data.shape
    sizes = tuple(sizes)
    if -1 in sizes:
        known = 1
        for v in sizes:
            if v != -1:
                known *= v
        sizes = tuple(sh[d] // known if v == -1 else v for v in sizes)
    n = 1
    for v in sizes:
        n *= v
    if n != sh[d]:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} ({sh[d]})")
    return reshape(x, sh[:d] + sizes + sh[d + 1:])


def squeeze(input, dim=None):
    x = _as_tensor(input)
    sh = x._data.shape
    if dim is None:
        new = tuple(s for s in sh if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        axes = {_one_axis(d, x.ndim) for d in dims}
        new = tuple(s for i, s in enumerate(sh) if not (i in axes and s == 1))
    return reshape(x, new)


def unsqueeze(input, dim):
    x = _as_tensor(input)
    n = x.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    d = dim % n
    sh = x._data.shape
    return reshape(x, sh[:d] + (1,) + sh[d:])


class Permute(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    _is_view = True

    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        inv = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inv[d] = i
        return grad.transpose(inv)


def permute(input, *dims):
    x = _as_tensor(input)
    dims = _shape_arg(dims)
    if len(dims) != x.ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired "
            f"ordering of dimensions i.e. input.dim() = {x.ndim} is not equal to len(dims) = {len(dims)}"
        )
    dims = tuple(_one_axis(d, x.ndim) for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"permute(): duplicate dims are not allowed, got {list(dims)}")
    return Permute.apply(x, dims)


def transpose(input, dim0, dim1):
    x = _as_tensor(input)
    if x.ndim < 2 and x.ndim == 0:
        return x
    d0, d1 = _one_axis(dim0, x.ndim), _one_axis(dim1, x.ndim)
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


swapaxes = transpose
swapdims = transpose


def t(input):
    x = _as_tensor(input)
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def adjoint(input):
    return transpose(input, -2, -1)


def movedim(input, source, destination):
    x = _as_tensor(input)
    src = source if isinstance(source, (tuple, list)) else (source,)
    dst = destination if isinstance(destination, (tuple, list)) else (destination,)
    src = [_one_axis(s, x.ndim) for s in src]
    dst = [_one_axis(d, x.ndim) for d in dst]
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return Permute.apply(x, tuple(order))


moveaxis = movedim


class Expand(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    _is_view = True

    @staticmethod
    def forward(ctx, a, shape):
        return xp.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad  # summed back to the input's shape by the engine


def expand(input, *sizes):
    x = _as_tensor(input)
    sizes = _shape_arg(sizes)
    sh = x._data.shape
    if len(sizes) < len(sh):
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
            f"dimensions in the tensor ({len(sh)})"
        )
    full = (1,) * (len(sizes) - len(sh)) + sh
    shape = []
    for i, (want, have) in enumerate(zip(sizes, full)):
        if want == -1:
            if i < len(sizes) - len(sh):
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            want = have
        if have != 1 and want != have:
            raise RuntimeError(
                f"The expanded size of the tensor ({want}) must match the existing size ({have}) at non-singleton "
                f"dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(sh)}"
            )
        shape.append(want)
    return Expand.apply(x, tuple(shape))


def broadcast_to(input, shape):
    return expand(input, tuple(shape))


def expand_as(input, other):
    return expand(input, tuple(other.shape))


def broadcast_tensors(*tensors):
    ts = [_as_tensor(t) for t in tensors]
    shape = xp.broadcast_shapes(*(t._data.shape for t in ts))
    return tuple(expand(t, shape) for t in ts)


def broadcast_shapes(*shapes):
    for s in shapes:
        if not isinstance(s, (int, tuple, list)) or (not isinstance(s, int) and not all(isinstance(v, int)
                                                                                        for v in s)):
            raise RuntimeError(f"Input shapes should be of type ints, a tuple of ints, or a list of ints, got {s!r}")
    return Size(xp.broadcast_shapes(*shapes))


class Repeat(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, a, reps):
        a2 = a.reshape((1,) * (len(reps) - a.ndim) + a.shape)
        ctx.in_shape, ctx.mid_shape, ctx.reps = a.shape, a2.shape, reps
        return xp.tile(a2, reps)

    @staticmethod
    def backward(ctx, grad):
        # out axis i has size reps[i] * s[i]: split it and sum over the repeat axis
        split = []
        for r, s in zip(ctx.reps, ctx.mid_shape):
            split += [r, s]
        g = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return g.reshape(ctx.in_shape)


def repeat(input, *sizes):
    x = _as_tensor(input)
    reps = _shape_arg(sizes)
    if len(reps) < x.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"
        )
    return Repeat.apply(x, reps)


def tile(input, dims):
    x = _as_tensor(input)
    dims = tuple(dims)
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return Repeat.apply(x, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    x = _as_tensor(input)
    if repeats is None:  # repeat_interleave(repeats): each index i repeated repeats[i] times
        if x._data.dtype.kind not in "iu":
            raise NotImplementedError(f"repeat_interleave of repeats of dtype {x.dtype}: repeats must be integers")
        return _make(xp.repeat(xp.arange(x._data.size), x._data.reshape(-1)))
    if dim is None:
        x = reshape(x, (-1,))
        dim = 0
    axis = _one_axis(dim, x.ndim)
    r = repeats._data if isinstance(repeats, Tensor) else repeats
    idx = xp.repeat(xp.arange(x._data.shape[axis]), r)
    return index_select(x, axis, _make(idx))


class Cat(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        out = []
        start = 0
        sl = [slice(None)] * grad.ndim
        for n, need in zip(ctx.sizes, ctx.needs_input_grad):
            if need:
                sl[ctx.axis] = slice(start, start + n)
                out.append(grad[tuple(sl)])
            else:
                out.append(None)
            start += n
        return tuple(out)


def cat(tensors, dim=0, *, out=None):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError("cat() expects a sequence of tensors, e.g. deepbox.cat([a, b], dim=0)")
    if len(tensors) == 0:
        raise ValueError("cat(): expected a non-empty list of Tensors")
    ts = _promote_all(tensors)
    # PyTorch skips 1-D empty tensors in cat (legacy behaviour)
    ts = [t for t in ts if not (t._data.ndim == 1 and t._data.shape[0] == 0)] or ts[:1]
    nd = ts[0].ndim
    axis = _one_axis(dim, nd)
    for i, t in enumerate(ts):
        if t.ndim != nd:
            raise RuntimeError(
                f"cat(): tensors must have the same number of dimensions: got {nd} and {t.ndim} (tensor {i})"
            )
        for d in range(nd):
            if d != axis and t._data.shape[d] != ts[0]._data.shape[d]:
                raise RuntimeError(
                    f"cat(): sizes of tensors must match except in dimension {axis}. Expected size "
                    f"{ts[0]._data.shape[d]} but got size {t._data.shape[d]} for tensor number {i} in the list "
                    f"(shapes {tuple(ts[0].shape)} and {tuple(t.shape)})."
                )
    return write_out(Cat.apply(*ts, axis=axis), out, "cat")


concat = cat
concatenate = cat


class Stack(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return xp.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(xp.take(grad, i, axis=ctx.axis) if need else None
                     for i, need in enumerate(ctx.needs_input_grad))


def stack(tensors, dim=0, *, out=None):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError("stack() expects a sequence of tensors, e.g. deepbox.stack([a, b], dim=0)")
    if len(tensors) == 0:
        raise RuntimeError("stack expects a non-empty TensorList")
    ts = _promote_all(tensors)
    sh = ts[0]._data.shape
    for i, t in enumerate(ts):
        if t._data.shape != sh:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(sh)} at entry 0 and "
                f"{list(t._data.shape)} at entry {i}"
            )
    n = len(sh) + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return write_out(Stack.apply(*ts, axis=dim % n), out, "stack")


def hstack(tensors):
    ts = [_as_tensor(t) for t in tensors]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    ts = [atleast_2d(t) for t in tensors]
    return cat(ts, 0)


def atleast_2d(x):
    x = _as_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1, 1))
    if x.ndim == 1:
        return unsqueeze(x, 0)
    return x


class Split(Function):
    """Views of consecutive pieces along an axis (one node, one output per piece)."""
    supports_complex = True  # a linear map with real coefficients: the same backward

    @staticmethod
    def forward(ctx, a, sizes, axis):
        ctx.axis, ctx.shape = axis, a.shape
        out = []
        start = 0
        sl = [slice(None)] * a.ndim
        for n in sizes:
            sl[axis] = slice(start, start + n)
            out.append(a[tuple(sl)])
            start += n
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        return xp.concatenate(grads, axis=ctx.axis)


def _int_arg(v, name):
    """An int given as a Python int or a one-element integer tensor; anything else is PyTorch's RuntimeError."""
    if isinstance(v, Tensor):
        if v._data.dtype.kind not in "iu" or v._data.size != 1:
            raise RuntimeError(f"{name} must be an int or a sequence of ints, got a {v.dtype} tensor of shape "
                               f"{list(v.shape)}")
        return int(v.item())
    return v


def split(tensor, split_size_or_sections, dim=0):
    x = _as_tensor(tensor)
    split_size_or_sections = _int_arg(split_size_or_sections, "split_size")
    axis = _one_axis(dim, x.ndim)
    n = x._data.shape[axis]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and n > 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={s}")
        sizes = [min(s, n - i) for i in range(0, n, s)] if s > 0 else [0]
    else:
        sizes = [int(v) for v in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension "
                f"{dim}), but got split_sizes={sizes}"
            )
    out = Split.apply(x, sizes, axis)
    return out if isinstance(out, tuple) else (out,)


def chunk(input, chunks, dim=0):
    x = _as_tensor(input)
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = x._data.shape[_one_axis(dim, x.ndim)]
    size = -(-n // chunks) if n else 1
    return split(x, max(size, 1), dim)


def tensor_split(input, indices_or_sections, dim=0):
    x = _as_tensor(input)
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections._data.dtype.kind not in "iu":
            raise RuntimeError(f"tensor_split expected tensor_indices_or_sections to have an integer dtype, got "
                               f"{indices_or_sections.dtype}")
        v = indices_or_sections._data
        indices_or_sections = int(v) if v.ndim == 0 else v.tolist()
    axis = _one_axis(dim, x.ndim)
    n = x._data.shape[axis]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
    else:
        idx = [0] + [min(int(i), n) for i in indices_or_sections] + [n]
        sizes = [max(b - a, 0) for a, b in zip(idx[:-1], idx[1:])]
    return split(x, sizes, dim)


def unbind(input, dim=0):
    x = _as_tensor(input)
    if x.ndim == 0:
        raise _no_dims_error(x, dim)
    axis = _one_axis(dim, x.ndim)
    parts = split(x, 1, axis)
    return tuple(squeeze(p, axis) for p in parts)


class Flip(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    _is_view = True

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return xp.flip(a, axes)

    @staticmethod
    def backward(ctx, grad):
        return xp.flip(grad, ctx.axes)


def flip(input, dims):
    x = _as_tensor(input)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    axes = tuple(_one_axis(d, x.ndim) for d in dims)
    for i, a in enumerate(axes):
        if a in axes[:i]:
            raise RuntimeError(f"dim {a} appears multiple times in the list of dims")
    return Flip.apply(x, tuple(a for a in axes if a is not None))


def fliplr(input):
    if _as_tensor(input).ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input):
    if _as_tensor(input).ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, (0,))


class Roll(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return xp.roll(a, shifts, axes)

    @staticmethod
    def backward(ctx, grad):
        neg = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return xp.roll(grad, neg, ctx.axes)


def _no_dims_error(x, dim):
    return IndexError(f"Dimension specified as {dim} but tensor has no dimensions")


def roll(input, shifts, dims=None):
    x = _as_tensor(input)
    sh = tuple(int(v) for v in shifts) if isinstance(shifts, (tuple, list)) else (int(shifts),)
    ds = None if dims is None else (tuple(dims) if isinstance(dims, (tuple, list)) else (dims,))
    if ds is None and len(sh) == 1:
        flat = reshape(x, (-1,))
        return reshape(Roll.apply(flat, sh[0], 0), tuple(x.shape))
    if x._data.size == 0 and x.ndim:
        return clone(x)  # PyTorch returns an empty input as it is, whatever the dims
    if ds is None or len(sh) != len(ds):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(sh)}, dims:{0 if ds is None else len(ds)}")
    if x.ndim == 0:
        raise _no_dims_error(x, ds[0])
    return Roll.apply(x, sh, tuple(_one_axis(d, x.ndim) for d in ds))


class Pad(Function):
    """``F.pad`` with constant fill: negative widths crop, positive ones add ``value``."""

    @staticmethod
    def forward(ctx, a, widths, value):
        ctx.widths, ctx.shape = widths, a.shape
        crop = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for (lo, hi), s in zip(widths, a.shape))
        pos = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        return xp.pad(a[crop], pos, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        widths, shape = ctx.widths, ctx.shape
        inner = tuple(s - max(-lo, 0) - max(-hi, 0) for (lo, hi), s in zip(widths, shape))
        g = grad[tuple(slice(max(lo, 0), max(lo, 0) + n) for (lo, _), n in zip(widths, inner))]
        if any(lo < 0 or hi < 0 for lo, hi in widths):
            full = xp.zeros(shape, grad.dtype)
            full[tuple(slice(max(-lo, 0), s - max(-hi, 0)) for (lo, hi), s in zip(widths, shape))] = g
            return full
        return g


def pad_source_index(n, lo, hi, mode):
    """For each position of a dimension of size ``n`` padded by (lo, hi), the input index it copies.

    Position j of the output is position ``j - lo`` of the input extended without end: reflected at
    the borders (without repeating the edge), clamped to the edge (replicate) or wrapped (circular).
    A negative width crops that extension, so a crop on one side and a pad on the other both refer
    to the original input, as PyTorch's reflect and replicate do.
    """
    i = xp.arange(-lo, n + hi)
    if mode == "reflect":
        period = 2 * (n - 1)
        i = xp.abs(i) % period if period else xp.zeros_like(i)
        return xp.where(i >= n, period - i, i)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    return i % n


class IndexPad(Function):
    """Reflect/replicate/circular pad: one gather per padded dimension; backward adds each copy back."""

    @staticmethod
    def forward(ctx, a, sources):
        ctx.shape, ctx.sources = a.shape, sources
        for ax, src in sources:
            a = xp.take(a, src, axis=ax)
        return a

    @staticmethod
    def backward(ctx, grad):
        from deepbox.ops.indexing import index_add_rows

        for ax, src in reversed(ctx.sources):
            g = index_add_rows(ctx.shape[ax], src, xp.moveaxis(grad, ax, 0))
            grad = xp.moveaxis(g, 0, ax)
        return grad


def pad(input, pad, mode="constant", value=None):
    """``F.pad``: ``pad`` lists (left, right) widths from the last dimension backwards; negative widths crop."""
    x = _as_tensor(input)
    pad = tuple(int(p) for p in pad)
    k = len(pad) // 2
    if len(pad) % 2 or k > x.ndim:
        raise RuntimeError(
            f"Padding length must be divisible by 2 and at most twice the number of dimensions of the input "
            f"(input has {x.ndim} dims, got pad of length {len(pad)})"
        )
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad mode {mode!r} is not supported; use constant, reflect, replicate or circular")
    shape = x._data.shape
    widths = [(0, 0)] * x.ndim
    for i in range(k):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        for (lo, hi), s in zip(widths, shape):
            if s - max(-lo, 0) - max(-hi, 0) < 0:
                raise RuntimeError(f"narrow(): length must be non-negative (padding ({lo}, {hi}) crops more than "
                                   f"the dimension's size {s})")
        return Pad.apply(x, tuple(widths), 0 if value is None else value)
    if value is not None and value != 0:
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if not 1 <= k <= 3 or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {x.ndim}D input tensor. Supported combinations for "
            "non-constant padding: 2D or 3D input with padding size 2, 3D or 4D with 4, 4D or 5D with 6")
    if mode != "circular" and 0 in shape[x.ndim - k - 1 if x.ndim == k + 2 else 0:]:
        raise RuntimeError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {list(shape)}")
    sources = []
    for ax in range(x.ndim - k, x.ndim):
        lo, hi = widths[ax]
        n = shape[ax]
        if mode == "circular":
            m = n - max(-lo, 0) - max(-hi, 0)  # PyTorch wraps around the cropped dimension
            if m < 0:
                raise RuntimeError(f"Negative padding value is resulting in an empty dimension: padding ({lo}, {hi}) "
                                   f"of a dimension of size {n}")
            if lo > m or hi > m:
                raise RuntimeError(f"Padding value causes wrapping around more than once: padding ({lo}, {hi}) "
                                   f"of a dimension of size {m}")
            src = max(-lo, 0) + pad_source_index(m, max(lo, 0), max(hi, 0), mode)
        else:
            if mode == "reflect" and (lo >= n or hi >= n):
                raise RuntimeError(
                    f"Argument #4: Padding size should be less than the corresponding input dimension, but got: "
                    f"padding ({lo}, {hi}) at dimension of input of size {n}")
            if n + lo + hi < 1:
                raise RuntimeError(f"input (size {n}) is too small for padding ({lo}, {hi}). Calculated output "
                                   f"size: {n + lo + hi}")
            src = pad_source_index(n, lo, hi, mode)
        if lo or hi:
            sources.append((ax, src))
    return IndexPad.apply(x, tuple(sources))


class Tril(Function):
    @staticmethod
    def forward(ctx, a, k, upper):
        ctx.k, ctx.upper = k, upper
        return xp.triu(a, k) if upper else xp.tril(a, k)

    @staticmethod
    def backward(ctx, grad):
        return xp.triu(grad, ctx.k) if ctx.upper else xp.tril(grad, ctx.k)


def _matrices(x, name):
    if x.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape {list(x.shape)}")
    return x


def tril(input, diagonal=0):
    return Tril.apply(_matrices(_as_tensor(input), "tril"), diagonal, False)


def triu(input, diagonal=0):
    return Tril.apply(_matrices(_as_tensor(input), "triu"), diagonal, True)


class Diagonal(Function):
    @staticmethod
    def forward(ctx, a, offset, d1, d2):
        ctx.shape, ctx.args = a.shape, (offset, d1, d2)
        return xp.diagonal(a, offset, d1, d2).copy()

    @staticmethod
    def backward(ctx, grad):
        g = xp.zeros(ctx.shape, grad.dtype)
        offset, d1, d2 = ctx.args
        gm = xp.moveaxis(g, (d1, d2), (-2, -1))  # a view: writing into it fills g
        idx = xp.arange(grad.shape[-1])
        gm[..., idx + max(-offset, 0), idx + max(offset, 0)] = grad
        return g


def diagonal(input, offset=0, dim1=0, dim2=1):
    x = _as_tensor(input)
    if _one_axis(dim1, x.ndim) == _one_axis(dim2, x.ndim):
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return Diagonal.apply(x, offset, _one_axis(dim1, x.ndim), _one_axis(dim2, x.ndim))


def diag(input, diagonal=0):
    x = _as_tensor(input)
    if x.ndim == 2:
        return globals()["diagonal"](x, diagonal)
    if x.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D")
    n = x._data.shape[0] + abs(diagonal)
    z = _make(xp.zeros((n, n), x._data.dtype))
    i = xp.arange(x._data.shape[0])
    return index_put(z, (_make(i + max(-diagonal, 0)), _make(i + max(diagonal, 0))), x)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    x = _as_tensor(input)
    n = x._data.shape[-1]
    eye = xp.eye(n, dtype=x._data.dtype)
    return mul(unsqueeze(x, -1), _make(eye))


def select(input, dim, index):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    n = x._data.shape[axis]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension {dim}")
    key = [slice(None)] * x.ndim
    key[axis] = index
    return getitem(x, tuple(key))


def narrow(input, dim, start, length):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    n = x._data.shape[axis] if x.ndim else 1
    start = start + n if start < 0 else start
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n}), or is "
                           "negative")
    key = [slice(None)] * x.ndim
    key[axis] = slice(start, start + length)
    return getitem(x, tuple(key))


class Contiguous(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, a):
        return xp.ascontiguousarray(a)

    @staticmethod
    def backward(ctx, grad):
        return grad


def contiguous(input, memory_format=None):
    x = _as_tensor(input)
    if x._data.flags.c_contiguous:
        return x
    return Contiguous.apply(x)


class Clone(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(input, *, memory_format=None):
    return Clone.apply(_as_tensor(input))


class Unfold(Function):
    """``x.unfold(dim, size, step)``: every window of ``size`` elements, ``step`` apart, along ``dim``,
    as a new last dimension (a view in NumPy too). Backward adds each window back where it came from."""

    @staticmethod
    def forward(ctx, a, axis, size, step):
        ctx.shape, ctx.axis, ctx.size, ctx.step = a.shape, axis, size, step
        windows = xp.lib.stride_tricks.sliding_window_view(a, size, axis=axis)
        return windows[(slice(None),) * axis + (slice(None, None, step),)]

    @staticmethod
    def backward(ctx, grad):
        axis, size, step = ctx.axis, ctx.size, ctx.step
        g = xp.zeros(ctx.shape, grad.dtype)
        gm = xp.moveaxis(g, axis, 0)                   # a view: writes land in g
        windows = xp.moveaxis(grad, axis, 0)           # (n_windows, ..., size)
        n = windows.shape[0]
        for k in range(size):                          # offset k of every window: distinct positions
            gm[k:k + step * (n - 1) + 1:step] += windows[..., k]
        return g


def unfold(input, dimension, size, step):
    """``Tensor.unfold``: windows of ``size`` along ``dimension``, ``step`` apart, in a new last dimension."""
    x = _as_tensor(input)
    axis = _one_axis(dimension, x.ndim)
    n = x._data.shape[axis] if x.ndim else 1
    if size > n or size < 0:
        raise RuntimeError(f"maximum size for tensor at dimension {dimension} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if x.ndim == 0:
        return reshape(x, (size,))
    return Unfold.apply(x, axis, size, step)


# ----------------------------------------------------------------------------- differences and products of sets
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along ``dim`` (``prepend``/``append`` joined first): x[1:] - x[:-1], n times;
    bool tensors give x[1:] != x[:-1]."""
    from deepbox.ops.elementwise import logical_xor, sub

    x = _as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    axis = _one_axis(dim, x.ndim)
    for extra in (prepend, append):
        if extra is not None and _as_tensor(extra).ndim != x.ndim:
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
    if prepend is not None or append is not None:
        x = cat([t for t in (prepend, x, append) if t is not None], axis)
    for _ in range(n):
        m = x.shape[axis]
        if m == 0:
            break
        later, earlier = narrow(x, axis, 1, m - 1), narrow(x, axis, 0, m - 1)
        x = logical_xor(later, earlier) if x._data.dtype.kind == "b" else sub(later, earlier)
    return x


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, as rows: (n1·n2·..., k); one tensor is returned."""
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    ts = [_as_tensor(t) for t in tensors]
    for t in ts:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(ts) == 1:
        return ts[0]
    if len({t._data.dtype for t in ts}) > 1:
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    sizes = tuple(t.shape[0] for t in ts)
    columns = []
    for i, t in enumerate(ts):  # column i: tensor i varying along axis i of the grid, then flattened
        view = [1] * len(ts)
        view[i] = sizes[i]
        columns.append(reshape(expand(reshape(t, tuple(view)), *sizes), (-1,)))
    return stack(columns, 1)

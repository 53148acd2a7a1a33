"""Indexing: ``x[key]``, ``x[key] = v``, gather/scatter, index_select, masked_fill."""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops._common import _TORCH_NAMES, _as_tensor, _one_axis, cast
from deepbox.tensor import Tensor, _make

xp = backend.xp


def _convert_key(key):
    """Turn tensors inside an index into arrays and check their dtypes; report if indexing is basic."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    basic = True
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        if isinstance(k, (list,)):
            k = xp.asarray(k)
        if isinstance(k, slice) and k.step is not None and k.step < 0:
            raise ValueError(f"step must be greater than zero (got the slice {k}); use flip() to reverse")
        if isinstance(k, backend.ndarray):
            if k.dtype.kind == "f":
                raise IndexError(
                    f"tensors used as indices must be long, int, byte or bool tensors, got a tensor of dtype {k.dtype}"
                )
            if k.dtype == xp.uint8:
                k = k.astype(bool)
            if k.ndim == 0 and k.dtype.kind in "iu":
                k = int(k)
            else:
                basic = False
        elif isinstance(k, float):
            raise IndexError(
                "only integers, slices (`:`), ellipsis (`...`), None and long or bool tensors are valid indices")
        out.append(k)
    return tuple(out), basic


def check_masks(key, shape):
    """Each boolean mask must match the dimensions it indexes (NumPy skips the check on empty arrays)."""
    used = sum((k.ndim if k.dtype == xp.bool_ else 1) if isinstance(k, backend.ndarray) else
               (0 if k is None or k is Ellipsis else 1) for k in key)
    axis = 0
    for k in key:
        if k is Ellipsis:
            axis += len(shape) - used
        elif isinstance(k, backend.ndarray) and k.dtype == xp.bool_:
            if k.ndim and tuple(k.shape) != tuple(shape[axis:axis + k.ndim]):
                raise IndexError(f"The shape of the mask {list(k.shape)} does not match the shape of the indexed "
                                 f"tensor {list(shape)} at dimension {axis}")
            axis += k.ndim
        elif k is not None:
            axis += 1


def drop_empty_ellipsis(key, ndim):
    """Remove a ``...`` that stands for no dimension: PyTorch then sees the indices on its two sides as
    adjacent (``x[m, ..., m]`` of a 2-D ``x``), where NumPy would still count them as separated."""
    if not any(k is Ellipsis for k in key):
        return key
    used = 0
    for k in key:
        if isinstance(k, backend.ndarray) and k.dtype == xp.bool_:
            used += max(k.ndim, 1) if k.ndim else 0
        elif k is not None and k is not Ellipsis:
            used += 1
    return tuple(k for k in key if k is not Ellipsis) if used == ndim else key


def split_key(key):
    """PyTorch's order for a key that mixes integers with tensor indices, as two NumPy keys.

    PyTorch applies integers as basic indexing (``select``) first and the tensor indices after,
    so only the tensors decide where the broadcast index dimensions go: in place when the tensors
    are adjacent, first otherwise. NumPy counts an integer as one more advanced index, which moves
    the index dimensions to the front in ``x[1, :, idx]``. Returns (basic key, advanced key) with
    ``x[key] == x[basic][advanced]`` in PyTorch's layout, or None when NumPy's order already agrees.
    """
    if not any(type(k) is int for k in key) or not any(isinstance(k, backend.ndarray) for k in key):
        return None
    basic, advanced = [], []
    for k in key:
        if isinstance(k, backend.ndarray):
            basic.extend([slice(None)] * (k.ndim if k.dtype == xp.bool_ else 1))
            advanced.append(k)
        elif type(k) is int:
            basic.append(k)
        elif k is None:
            basic.append(None)
            advanced.append(slice(None))
        elif k is Ellipsis:
            basic.append(k)
            advanced.append(k)
        else:
            basic.append(k)
            advanced.append(slice(None))
    return tuple(basic), tuple(advanced)


def index_add_rows(n_rows, idx, src):
    """Sum the rows of ``src`` (N, ...) into an (n_rows, ...) array at row ``idx`` (N,), repeats accumulating.

    A stable sort groups equal indices, then one ``add.reduceat`` sums each group: about 3x faster
    than ``np.add.at`` for embedding-sized gradients, with the same result.
    """
    out = xp.zeros((n_rows,) + src.shape[1:], src.dtype)
    if idx.size == 0:
        return out
    order = xp.argsort(idx, kind="stable")
    s = idx[order]
    starts = xp.flatnonzero(xp.concatenate(([True], s[1:] != s[:-1])))
    out[s[starts]] = xp.add.reduceat(src[order], starts, axis=0)
    return out


def _index_error(e, shape, key):
    return IndexError(f"{e} (indexing a tensor of shape {tuple(shape)})")


class GetItem(Function):
    supports_complex = True  # a linear map with real coefficients: the same backward
    @staticmethod
    def forward(ctx, a, key, basic):
        ctx.key, ctx.basic, ctx.shape = key, basic, a.shape
        return a[key]

    @staticmethod
    def backward(ctx, grad):
        g = xp.zeros(ctx.shape, grad.dtype)
        if ctx.basic:
            g[ctx.key] = grad
        else:
            xp.add.at(g, ctx.key, grad)  # repeated indices accumulate
        return g


class _GetItemView(GetItem):
    _is_view = True


def getitem(input, key):
    x = _as_tensor(input)
    key, basic = _convert_key(key)
    try:
        return _getitem(x, key, basic)
    except IndexError as e:
        empty = _empty_result(x, key, basic)
        if empty is not None:
            return empty
        raise _index_error(e, x._data.shape, key) from None


def _getitem(x, key, basic):
    if not basic:
        check_masks(key, x._data.shape)
        key = drop_empty_ellipsis(key, x.ndim)
        split = split_key(key)
        if split is not None:
            return GetItem.apply(_GetItemView.apply(x, split[0], True), split[1], False)
    return (_GetItemView if basic else GetItem).apply(x, key, basic)


def _empty_result(x, key, basic):
    """PyTorch checks index bounds element by element, so an indexing whose result is empty never raises
    (``x[0:0, tensor([5])]`` is empty, whatever 5 is). The same indexing with every index array set to 0:
    returned when its result has no elements, else None (and the IndexError stands)."""
    if basic:
        return None
    keys = key if isinstance(key, tuple) else (key,)
    zeroed = tuple(xp.zeros_like(k) if isinstance(k, xp.ndarray) and k.dtype.kind in "iu" else k for k in keys)
    try:
        out = _getitem(x, zeroed if isinstance(key, tuple) else zeroed[0], basic)
    except IndexError:
        return None
    return out if out._data.size == 0 else None


class IndexPut(Function):
    """``out = a.copy(); out[key] = v`` (accumulate=False) or ``+= v`` (accumulate=True)."""

    @staticmethod
    def forward(ctx, a, v, key, accumulate):
        ctx.key, ctx.accumulate, ctx.vshape = key, accumulate, xp.shape(v)
        out = a.copy()
        if out.size == 0:  # nothing to write; PyTorch checks no index against an empty tensor's sizes either
            return out
        basic, key = _target(out, key)
        try:
            if accumulate:
                xp.add.at(basic, key, v)
            else:
                basic[key] = v
        except ValueError as e:  # NumPy's broadcast error, as PyTorch's RuntimeError
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(xp.shape(v))} cannot be broadcast to "
                               f"the indexing result ({e})") from None
        return out

    @staticmethod
    def backward(ctx, grad):
        ga = gv = None
        if grad.size == 0:
            return grad, xp.zeros(ctx.vshape, grad.dtype)
        if ctx.needs_input_grad[0]:
            if ctx.accumulate:
                ga = grad
            else:
                ga = grad.copy()
                basic, key = _target(ga, ctx.key)
                basic[key] = 0
        if ctx.needs_input_grad[1]:
            basic, key = _target(grad, ctx.key)
            gv = basic[key]
        return ga, gv


def _target(a, key):
    """(array, key) such that ``array[key]`` is ``a[key]`` in PyTorch's layout and writes go into ``a``."""
    split = split_key(key) if isinstance(key, tuple) else None
    if split is None:
        return a, key
    return a[split[0]], split[1]


def index_put(input, indices, values, accumulate=False):
    x = _as_tensor(input)
    key, basic = _convert_key(tuple(indices))
    if not basic:
        check_masks(key, x._data.shape)
        key = drop_empty_ellipsis(key, x.ndim)
    v = values if isinstance(values, Tensor) else _make(xp.asarray(values, dtype=x._data.dtype))
    if v._data.dtype != x._data.dtype:
        v = cast(v, x._data.dtype)
    return IndexPut.apply(x, v, key, accumulate)


class Gather(Function):
    @staticmethod
    def forward(ctx, a, idx, axis):
        ctx.shape, ctx.axis = a.shape, axis
        ctx.save_for_backward(idx)
        if any(i != axis and idx.shape[i] < a.shape[i] for i in range(a.ndim)):
            a = a[tuple(slice(0, idx.shape[i]) if i != axis else slice(None) for i in range(a.ndim))]
        return xp.take_along_axis(a, idx, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        return _scatter_add_array(xp.zeros(ctx.shape, grad.dtype), idx, grad, ctx.axis)


def _scatter_grid(idx, axis):
    """The full index of the elements that scatter/gather along ``axis`` touch: ``idx`` along ``axis``,
    each element's own position along the other dimensions (only the index's extent counts)."""
    grids = list(xp.indices(idx.shape, sparse=True))
    grids[axis] = idx
    return tuple(grids)


def _scatter_add_array(out, idx, src, axis):
    """out[..., idx[...], ...] += src along ``axis`` with repeated indices accumulating (in place)."""
    src = src[tuple(slice(0, n) for n in idx.shape)]
    xp.add.at(out, _scatter_grid(idx, axis), src)
    return out


def _src_grad(grad, idx, axis, src_shape):
    """The gradient of scatter's ``src``: the output gradient at each scattered position, 0 beyond the index."""
    g = xp.zeros(src_shape, grad.dtype)
    g[tuple(slice(0, n) for n in idx.shape)] = grad[_scatter_grid(idx, axis)]
    return g


def _check_index(index, name, ndim):
    idx = index._data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index, got {idx.dtype}")
    if idx.ndim != ndim and not (idx.ndim == 0 and ndim == 0):
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as input tensor "
                           f"(got {idx.ndim} and {ndim})")
    return idx


def gather(input, dim, index, *, sparse_grad=False):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    idx = _check_index(index, "gather", x.ndim)
    for d in range(idx.ndim):
        if d != axis and idx.shape[d] > x._data.shape[d]:
            raise RuntimeError(f"Size does not match at dimension {d} expected index {list(idx.shape)} to be no "
                               f"larger than self {list(x._data.shape)} apart from dimension {axis}")
    n = x._data.shape[axis] if x.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise RuntimeError(f"gather(): index {int(idx.max()) if idx.max() >= n else int(idx.min())} is out of bounds "
                           f"for dimension {dim} with size {n}")
    return Gather.apply(x, idx, axis)


class ScatterAdd(Function):
    @staticmethod
    def forward(ctx, a, src, idx, axis):
        ctx.save_for_backward(idx)
        ctx.axis, ctx.src_shape = axis, src.shape
        return _scatter_add_array(a.copy(), idx, src, axis)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        gs = _src_grad(grad, idx, ctx.axis, ctx.src_shape) if ctx.needs_input_grad[1] else None
        return grad, gs


class Scatter(Function):
    @staticmethod
    def forward(ctx, a, src, idx, axis):
        ctx.save_for_backward(idx)
        ctx.axis, ctx.src_shape = axis, xp.shape(src)
        out = a.copy()
        if xp.ndim(src) == 0:
            src = xp.broadcast_to(xp.asarray(src, a.dtype), idx.shape)
        else:
            src = src[tuple(slice(0, n) for n in idx.shape)]
        out[_scatter_grid(idx, axis)] = src
        return out

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        ga = grad.copy()
        ga[_scatter_grid(idx, ctx.axis)] = 0
        gs = _src_grad(grad, idx, ctx.axis, ctx.src_shape) if ctx.needs_input_grad[1] else None
        return ga, gs


def _check_scatter(name, x, axis, idx, src):
    """PyTorch's checks on scatter's index and src: same number of dimensions, the index no larger than
    ``src`` anywhere and no larger than ``self`` outside ``dim``, every index within ``self``'s size."""
    if isinstance(src, Tensor) and src.ndim != idx.ndim:
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as src tensor "
                           f"(got {idx.ndim} and {src.ndim})")
    shape = x._data.shape
    sshape = src._data.shape if isinstance(src, Tensor) else None
    for d in range(idx.ndim):
        if (d != axis and idx.shape[d] > shape[d]) or (sshape is not None and idx.shape[d] > sshape[d]):
            raise RuntimeError(f"{name}(): Expected index {list(idx.shape)} to be no larger than self {list(shape)} "
                               f"apart from dimension {axis} and to be no larger size than src "
                               f"{list(sshape) if sshape is not None else []}")
    n = shape[axis] if x.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = int(idx.max()) if idx.max() >= n else int(idx.min())
        raise RuntimeError(f"{name}(): index {bad} is out of bounds for dimension {axis} with size {n}")


def scatter_add(input, dim, index, src):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    idx = _check_index(index, "scatter_add", x.ndim)
    src = _as_tensor(src)
    _check_scatter("scatter_add", x, axis, idx, src)
    return ScatterAdd.apply(x, src, idx, axis)


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    idx = _check_index(index, "scatter", x.ndim)
    if reduce == "add":
        return scatter_add(x, dim, index, src)
    if src is None:
        src = value
    _check_scatter("scatter", x, axis, idx, src)
    return Scatter.apply(x, src, idx, axis)


class IndexSelect(Function):
    @staticmethod
    def forward(ctx, a, idx, axis):
        ctx.save_for_backward(idx)
        ctx.shape, ctx.axis = a.shape, axis
        return xp.take(a, idx, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        if ctx.axis == 0:
            return index_add_rows(ctx.shape[0], idx, grad)
        g = xp.zeros(ctx.shape, grad.dtype)
        gm = xp.moveaxis(g, ctx.axis, 0)
        gm[...] = index_add_rows(ctx.shape[ctx.axis], idx, xp.moveaxis(grad, ctx.axis, 0))
        return g


def index_select(input, dim, index):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    idx = index._data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"index_select(): Expected dtype int32/int64 for index but got {idx.dtype}")
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    n = x._data.shape[axis]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(
            f"index_select(): index out of range in self: index {int(idx.max())} for dimension of size {n}")
    return IndexSelect.apply(x, idx.reshape(-1), axis)


def take(input, index):
    x = _as_tensor(input).reshape(-1)
    idx = index._data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {idx.dtype}")
    n = x._data.shape[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = int(idx.max()) if idx.max() >= n else int(idx.min())
        raise IndexError(f"out of range: tried to access index {bad} on a tensor of {n} elements.")
    return getitem(x, (_make(idx),))


class MaskedFill(Function):
    @staticmethod
    def forward(ctx, a, mask, value):
        ctx.save_for_backward(mask)
        return xp.where(mask, xp.asarray(value, a.dtype), a)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return xp.where(mask, xp.zeros((), grad.dtype), grad), None


def masked_fill(input, mask, value):
    x = _as_tensor(input)
    m = mask._data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype != xp.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {m.dtype}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        value = value.item()
    try:
        xp.broadcast_shapes(m.shape, x._data.shape)
    except ValueError:
        raise RuntimeError(f"masked_fill: the mask of shape {m.shape} cannot be broadcast to the input's shape "
                           f"{tuple(x.shape)}") from None
    return MaskedFill.apply(x, m, value)


def masked_select(input, mask):
    x = _as_tensor(input)
    m = mask._data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype != xp.bool_:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {m.dtype}")
    shape = xp.broadcast_shapes(m.shape, x._data.shape)
    x = x.expand(shape)
    return getitem(x, (_make(xp.broadcast_to(m, shape)),))


def nonzero(input, *, as_tuple=False):
    a = _as_tensor(input)._data
    if a.ndim == 0:  # a 0-d tensor is one element with no coordinates: (1, 0) or (0, 0)
        if as_tuple:
            return (_make(xp.zeros(int(a != 0), xp.int64)),)
        return _make(xp.zeros((int(a != 0), 0), xp.int64))
    nz = xp.nonzero(a)
    if as_tuple:
        return tuple(_make(i) for i in nz)
    return _make(xp.stack(nz, axis=1) if nz else xp.zeros((0, 0), xp.int64))


def argwhere(input):
    return nonzero(input)


def one_hot(tensor, num_classes=-1):
    """``F.one_hot``: int64 one-hot encoding with a trailing class dimension."""
    idx = _as_tensor(tensor)._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensor of integer dtype, got {idx.dtype}")
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got values in "
                           f"[{int(idx.min())}, {int(idx.max())}]")
    out = xp.zeros(idx.shape + (num_classes,), xp.int64)
    xp.put_along_axis(out, idx[..., None].astype(xp.int64), 1, axis=-1)
    return _make(out)




# ----------------------------------------------------------------------------- scatter_reduce
class ScatterReduce(Function):
    """``out = self`` with each ``src`` element reduced into ``out[..idx..]`` by sum, prod, mean, amax or amin.

    ``include_self=False`` reduces only the scattered values into positions that receive any. Gradients
    as PyTorch: sum passes the gradient through; mean divides it by each position's count; amax/amin
    send it to every element equal to the result, shared evenly; prod multiplies by the others' product.
    """

    @staticmethod
    def forward(ctx, a, src, idx, axis, reduce, include_self):
        grid = _scatter_grid(idx, axis)
        s = src[tuple(slice(0, n) for n in idx.shape)]
        hit = xp.zeros(a.shape, bool)
        hit[grid] = True
        ufunc = {"sum": xp.add, "mean": xp.add, "prod": xp.multiply, "amax": xp.maximum, "amin": xp.minimum}[reduce]
        out = a.copy()
        if not include_self:  # start each receiving position from the reduction's identity
            out[hit] = _identity(reduce, a.dtype)
        ufunc.at(out, grid, s)
        count = None
        if reduce == "mean":
            count = xp.zeros(a.shape, xp.int64)
            xp.add.at(count, grid, 1)
            count = count + (1 if include_self else 0)
            count = xp.maximum(count, 1)
            out = out / count if a.dtype.kind == "f" else xp.floor_divide(out, count)
        ctx.save_for_backward(a, s, out)
        ctx.grid, ctx.hit, ctx.count = grid, hit, count
        ctx.reduce, ctx.include_self, ctx.src_shape = reduce, include_self, src.shape
        return out.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        a, s, out = ctx.saved_tensors
        grid, hit, reduce = ctx.grid, ctx.hit, ctx.reduce
        keep_self = ctx.include_self
        if reduce == "sum":
            ga, gs_part = grad if keep_self else xp.where(hit, 0, grad), grad[grid]
        elif reduce == "mean":
            gc = grad / ctx.count
            ga, gs_part = (gc if keep_self else xp.where(hit, 0, grad)), gc[grid]
        elif reduce == "prod":
            # d out / d v is the product of the other factors; count zeros instead of dividing by v:
            # with no zero it is out / v, with one zero only that factor gets the nonzero product
            zeros = xp.zeros(out.shape, xp.int64)
            nonzero_prod = xp.ones(out.shape, grad.dtype)
            if keep_self:
                zeros += a == 0
                nonzero_prod *= xp.where(a == 0, 1, a)
            xp.add.at(zeros, grid, s == 0)
            xp.multiply.at(nonzero_prod, grid, xp.where(s == 0, 1, s))

            def others(v, z, p):
                safe = xp.where(v == 0, 1, v)
                return xp.where(v == 0, xp.where(z == 1, p, 0), xp.where(z == 0, p / safe, 0))

            ga = xp.where(hit, grad * others(a, zeros, nonzero_prod) if keep_self else 0, grad)
            gs_part = grad[grid] * others(s, zeros[grid], nonzero_prod[grid])
        else:  # amax / amin: the gradient is shared by the elements that reach the result
            count = xp.zeros(out.shape, grad.dtype)
            self_hit = (a == out) & (keep_self | ~hit)
            count += self_hit
            src_hit = s == out[grid]
            xp.add.at(count, grid, src_hit)
            share = grad / xp.maximum(count, 1)
            ga = xp.where(self_hit, share, 0)
            gs_part = xp.where(src_hit, share[grid], 0)
        gs = xp.zeros(ctx.src_shape, grad.dtype)
        gs[tuple(slice(0, n) for n in gs_part.shape)] = gs_part
        return ga, gs


def _identity(reduce, dtype):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dtype.kind == "f":
        return -xp.inf if reduce == "amax" else xp.inf
    info = xp.iinfo(dtype) if dtype.kind in "iu" else None
    return (info.min if reduce == "amax" else info.max) if info else reduce == "amin"


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    x = _as_tensor(input)
    axis = _one_axis(dim, x.ndim)
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    idx = _check_index(index, "scatter_reduce", x.ndim)
    src = _as_tensor(src)
    if src._data.dtype != x._data.dtype:
        raise RuntimeError(f"scatter_reduce(): Expected self.dtype to be equal to src.dtype, got {x.dtype} and "
                           f"{src.dtype}")
    _check_scatter("scatter_reduce", x, axis, idx, src)
    return ScatterReduce.apply(x, src, idx, axis, reduce, bool(include_self))


# ----------------------------------------------------------------------------- index_add / index_copy
class IndexAdd(Function):
    """out = input; out[..., index[i], ...] += alpha * source[..., i, ...] along ``axis`` (repeats add up).
    Gradients: input gets the output's gradient, source the rows it was added to (times alpha)."""

    @staticmethod
    def forward(ctx, a, src, idx, axis, alpha):
        ctx.save_for_backward(idx)
        ctx.axis, ctx.alpha = axis, alpha
        out = a.copy()
        rows = xp.moveaxis(out, axis, 0)  # a view: adding into it adds into out
        rows += index_add_rows(a.shape[axis], idx, xp.moveaxis(src, axis, 0) * alpha).astype(a.dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        gs = xp.take(grad, idx, axis=ctx.axis) * ctx.alpha if ctx.needs_input_grad[1] else None
        return grad, gs


class IndexCopy(Function):
    """out = input with out[..., index[i], ...] = source[..., i, ...] along ``axis``.
    Gradients: input's where it was not overwritten, source the rows it was copied to."""

    @staticmethod
    def forward(ctx, a, src, idx, axis):
        ctx.save_for_backward(idx)
        ctx.axis = axis
        out = a.copy()
        xp.moveaxis(out, axis, 0)[idx] = xp.moveaxis(src, axis, 0)
        return out

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        ga = grad.copy()
        xp.moveaxis(ga, ctx.axis, 0)[idx] = 0
        gs = xp.take(grad, idx, axis=ctx.axis) if ctx.needs_input_grad[1] else None
        return ga, gs


def _index_source_args(name, input, dim, index, source):
    """PyTorch's checks shared by index_add and index_copy: an integer vector index, one index per slice
    of ``source`` along ``dim``, slices of the same shape as ``input``'s, indices within ``input``."""
    x, src = _as_tensor(input), _as_tensor(source)
    axis = _one_axis(dim, x.ndim) or 0  # a 0-d tensor counts as one element along dim 0
    idx = index._data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index but got: "
                           f"{_TORCH_NAMES.get(idx.dtype.name, idx.dtype.name)}")
    if idx.ndim > 1:
        if name == "index_add_":
            raise IndexError(f"index_add_(): Index is supposed to be a vector, but got dim: {idx.ndim} with size: "
                             f"{list(idx.shape)}")
        raise IndexError(f"{name}(): Index should have dimension 1 or 0 (got {idx.ndim})")
    idx = idx.reshape(-1).astype(xp.int64)
    if x._data.dtype != src._data.dtype:
        raise RuntimeError(f"{name}(): self ({_TORCH_NAMES[x._data.dtype.name]}) and source "
                           f"({_TORCH_NAMES[src._data.dtype.name]}) must have the same scalar type")
    xs, ss = (tuple(x.shape) or (1,)), (tuple(src.shape) or (1,))
    n_src = ss[axis] if len(ss) == len(xs) else None
    if n_src != idx.size:
        error = RuntimeError if name == "index_add_" else IndexError  # as PyTorch
        raise error(f"{name}(): Number of indices ({idx.size}) should be equal to source.size(dim) "
                    f"({n_src if n_src is not None else list(src.shape)}), for dim: {axis}")
    if xs[:axis] + xs[axis + 1:] != ss[:axis] + ss[axis + 1:]:
        raise RuntimeError("source tensor shape must match self tensor shape, excluding the specified dimension. "
                           f"Got self.shape = {list(x.shape)} source.shape = {list(src.shape)}")
    if idx.size and (idx.min() < 0 or idx.max() >= xs[axis]):
        bad = int(idx.max()) if idx.max() >= xs[axis] else int(idx.min())
        raise IndexError(f"{name}(): index {bad} is out of bounds for dimension {axis} with size {xs[axis]} "
                         "(index out of range in self)")
    return x, src, idx, axis


def index_add(input, dim, index, source, *, alpha=1):
    x, src, idx, axis = _index_source_args("index_add_", input, dim, index, source)
    if x.ndim == 0:
        return IndexAdd.apply(x.reshape(1), src.reshape(1), idx, 0, alpha).reshape(())
    return IndexAdd.apply(x, src, idx, axis, alpha)


def index_copy(input, dim, index, source):
    x, src, idx, axis = _index_source_args("index_copy_", input, dim, index, source)
    if x.ndim == 0:
        return IndexCopy.apply(x.reshape(1), src.reshape(1), idx, 0).reshape(())
    return IndexCopy.apply(x, src, idx, axis)

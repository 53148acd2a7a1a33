"""Differentiable primitives on tensors, and their binding as ``Tensor`` methods and operators."""
from __future__ import annotations

from deepbox import kernels as _kernels
from deepbox.ops import elementwise as _ew
from deepbox.ops import indexing as _ix
from deepbox.ops import inplace as _ip
from deepbox.ops import matmul as _mm
from deepbox.ops import movement as _mv
from deepbox.ops import reduction as _rd
from deepbox.tensor import Tensor

_EXPORTS = {
    _ew: """add sub subtract rsub mul multiply div divide true_divide floor_divide remainder fmod pow float_power
            maximum minimum fmax fmin neg negative abs absolute exp exp2 expm1 log log1p log2 log10 sqrt rsqrt
            square reciprocal sin cos tan atan arctan tanh sigmoid erf frac sign sgn floor ceil round trunc fix relu
            clamp clip clamp_min clamp_max where lerp addcmul addcdiv eq ne lt le gt ge greater greater_equal less
            less_equal not_equal logical_and logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor
            bitwise_not isnan isinf isfinite isposinf isneginf nan_to_num isclose allclose equal cast
            asin arcsin acos arccos sinh cosh asinh arcsinh acosh arccosh atanh arctanh logaddexp logaddexp2
            copysign bitwise_left_shift bitwise_right_shift""",
    _rd: """sum mean nansum nanmean var std var_mean std_mean prod amax amin max min argmax argmin logsumexp
            softmax log_softmax cumsum cumprod norm dist sort argsort topk kthvalue median any all count_nonzero
            bincount unique cummax cummin logcumsumexp""",
    _mv: """reshape view flatten unflatten squeeze unsqueeze permute transpose swapaxes swapdims t adjoint movedim
            moveaxis expand broadcast_to expand_as broadcast_tensors broadcast_shapes repeat tile repeat_interleave
            cat concat concatenate stack hstack vstack atleast_2d split chunk tensor_split unbind flip fliplr flipud
            roll pad tril triu diagonal diag diag_embed select narrow contiguous clone""",
    _ix: """getitem index_put setitem gather scatter_add scatter index_select take masked_fill masked_select
            nonzero argwhere one_hot scatter_reduce""",
    _mm: "matmul mm bmm mv dot inner vdot outer ger addmm baddbmm einsum tensordot",
}

__all__ = []
for _mod, _names in _EXPORTS.items():
    for _n in _names.split():
        globals()[_n] = getattr(_mod, _n)
        __all__.append(_n)


# ----------------------------------------------------------------------------- Tensor methods
def _bind():
    g = globals()
    methods = """add sub subtract mul multiply div divide true_divide floor_divide remainder fmod pow float_power
        maximum minimum fmax fmin neg negative abs absolute exp exp2 expm1 log log1p log2 log10 sqrt rsqrt square
        reciprocal sin cos tan atan arctan tanh sigmoid erf frac sign sgn floor ceil round trunc fix relu clamp clip
        clamp_min clamp_max where lerp addcmul addcdiv eq ne lt le gt ge greater greater_equal less less_equal
        not_equal logical_and logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor bitwise_not
        isnan isinf isfinite isposinf isneginf nan_to_num isclose allclose equal
        asin arcsin acos arccos sinh cosh asinh arcsinh acosh arccosh atanh arctanh logaddexp logaddexp2
        copysign bitwise_left_shift bitwise_right_shift cummax cummin logcumsumexp scatter_reduce
        sum mean nansum nanmean var std prod amax amin max min argmax argmin logsumexp softmax log_softmax cumsum
        cumprod norm dist sort argsort topk kthvalue median any all count_nonzero bincount unique
        reshape view flatten unflatten squeeze unsqueeze permute transpose swapaxes swapdims t adjoint movedim
        moveaxis expand broadcast_to expand_as repeat tile repeat_interleave split chunk tensor_split unbind flip
        fliplr flipud roll tril triu diagonal diag diag_embed select narrow contiguous clone
        index_put gather scatter_add scatter index_select take masked_fill masked_select nonzero argwhere
        matmul mm bmm mv dot inner outer ger addmm baddbmm""".split()
    for m in methods:
        setattr(Tensor, m, g[m])

    def where_method(self, condition, other):
        return _ew.where(condition, self, other)

    Tensor.where = where_method
    Tensor.__getitem__ = _ix.getitem
    Tensor.__setitem__ = _ix.setitem

    def _r(fn):
        return lambda self, other: fn(other, self)

    def _fast(cls, slow):
        # operators on two tensors of one dtype (or a float tensor and a Python float) skip the promotion logic
        def op(self, other):
            try:
                if other.__class__ is Tensor:
                    if self._data.dtype is other._data.dtype and self._data.dtype.kind == "f":
                        return _kernels.choose(cls, self._data, other._data).apply(self, other)
                elif other.__class__ is float and self._data.dtype.kind == "f":
                    return cls.apply(self, other)
            except ValueError:
                pass  # a broadcasting mismatch: the general path raises it with both shapes named
            return slow(self, other)

        return op

    Tensor.__add__ = _fast(_ew.Add, _ew.add)
    Tensor.__radd__ = _r(_ew.add)
    Tensor.__sub__ = _fast(_ew.Sub, _ew.sub)
    Tensor.__rsub__ = _r(_ew.sub)
    Tensor.__mul__ = _fast(_ew.Mul, _ew.mul)
    Tensor.__rmul__ = _r(_ew.mul)
    Tensor.__truediv__ = _fast(_ew.Div, _ew.div)
    Tensor.__rtruediv__ = _r(_ew.div)
    Tensor.__floordiv__ = _ew.floor_divide
    Tensor.__rfloordiv__ = _r(_ew.floor_divide)
    Tensor.__mod__ = _ew.remainder
    Tensor.__rmod__ = _r(_ew.remainder)
    Tensor.__pow__ = _ew.pow
    Tensor.__rpow__ = _r(_ew.pow)
    Tensor.__matmul__ = _mm.matmul
    Tensor.__rmatmul__ = _r(_mm.matmul)
    Tensor.__neg__ = _ew.neg
    Tensor.__pos__ = lambda self: self
    Tensor.__abs__ = _ew.abs
    Tensor.__eq__ = _ew.eq
    Tensor.__ne__ = _ew.ne
    Tensor.__lt__ = _ew.lt
    Tensor.__le__ = _ew.le
    Tensor.__gt__ = _ew.gt
    Tensor.__ge__ = _ew.ge
    Tensor.__and__ = _ew.bitwise_and
    Tensor.__rand__ = _r(_ew.bitwise_and)
    Tensor.__or__ = _ew.bitwise_or
    Tensor.__ror__ = _r(_ew.bitwise_or)
    Tensor.__xor__ = _ew.bitwise_xor
    Tensor.__rxor__ = _r(_ew.bitwise_xor)
    Tensor.__invert__ = _ew.bitwise_not
    Tensor.__lshift__ = _ew.bitwise_left_shift
    Tensor.__rlshift__ = _r(_ew.bitwise_left_shift)
    Tensor.__rshift__ = _ew.bitwise_right_shift
    Tensor.__rrshift__ = _r(_ew.bitwise_right_shift)
    Tensor.unfold = _mv.unfold  # Tensor.unfold(dimension, size, step); torch.unfold does not exist

    # in place
    Tensor.add_ = _ip.add_
    Tensor.sub_ = _ip.sub_
    Tensor.subtract_ = _ip.sub_
    Tensor.mul_ = _ip.mul_
    Tensor.multiply_ = _ip.mul_
    Tensor.div_ = _ip.div_
    Tensor.divide_ = _ip.div_
    Tensor.__iadd__ = lambda self, o: _ip.add_(self, o)
    Tensor.__isub__ = lambda self, o: _ip.sub_(self, o)
    Tensor.__imul__ = lambda self, o: _ip.mul_(self, o)
    Tensor.__itruediv__ = lambda self, o: _ip.div_(self, o)
    Tensor.zero_ = _ip.zero_
    Tensor.fill_ = _ip.fill_
    Tensor.copy_ = _ip.copy_
    Tensor.uniform_ = _ip.uniform_
    Tensor.normal_ = _ip.normal_
    Tensor.bernoulli_ = _ip.bernoulli_
    Tensor.exponential_ = _ip.exponential_
    Tensor.random_ = _ip.random_
    for name in """pow clamp clip clamp_min clamp_max exp log sqrt rsqrt abs neg sigmoid tanh relu sin cos floor ceil
                   round trunc sign reciprocal square masked_fill index_put scatter scatter_add lerp addcmul addcdiv
                   fmod remainder tril triu log1p expm1 t transpose squeeze unsqueeze asin acos sinh cosh asinh acosh
                   atanh copysign scatter_reduce bitwise_left_shift bitwise_right_shift""".split():
        setattr(Tensor, name + "_", _ip._make_unary_inplace(name))

    def _inplace_shape(name):
        fn = g[name]

        def op(self, *args, **kwargs):
            r = fn(self, *args, **kwargs)
            self._data = r._data
            self._version[0] += 1
            return self

        return op

    # shape-changing in-place ops rebind the array (no autograd through them)
    for name in ("t", "transpose", "squeeze", "unsqueeze"):
        setattr(Tensor, name + "_", _inplace_shape(name))

    # shape/convenience methods with PyTorch's method-only signatures
    Tensor.T = property(lambda self: _mv.permute(self, *reversed(range(self.ndim))))
    Tensor.mT = property(lambda self: _mv.transpose(self, -2, -1))
    Tensor.H = property(lambda self: _mv.permute(self, *reversed(range(self.ndim))))
    Tensor.mH = Tensor.mT
    Tensor.view_as = lambda self, other: _mv.view(self, tuple(other.shape))
    Tensor.reshape_as = lambda self, other: _mv.reshape(self, tuple(other.shape))
    Tensor.type_as = lambda self, other: self.to(other.dtype)
    Tensor.new_tensor = lambda self, data, dtype=None, **kw: _creation().tensor(data, dtype=dtype or self.dtype, **kw)
    Tensor.new_zeros = lambda self, *size, dtype=None, **kw: _creation().zeros(*size, dtype=dtype or self.dtype, **kw)
    Tensor.new_ones = lambda self, *size, dtype=None, **kw: _creation().ones(*size, dtype=dtype or self.dtype, **kw)
    Tensor.new_empty = lambda self, *size, dtype=None, **kw: _creation().empty(*size, dtype=dtype or self.dtype, **kw)
    Tensor.new_full = lambda self, size, fill_value, dtype=None, **kw: _creation().full(
        size, fill_value, dtype=dtype or self.dtype, **kw)
    Tensor.softmax = lambda self, dim, dtype=None: _rd.softmax(self, dim, dtype)
    Tensor.log_softmax = lambda self, dim, dtype=None: _rd.log_softmax(self, dim, dtype)


def _creation():
    from deepbox import creation

    return creation


_bind()


# PyTorch's NumPy-style keyword aliases (axis=, keepdims=, x1=/x2=) for every function and method
from deepbox.ops._aliases import accept_numpy_names as _accept_numpy_names  # noqa: E402

_accept_numpy_names(globals(), __all__, Tensor)

"""Every public op, declared once: the table below binds each function to its places.

Adding an op takes three steps:

1. write its Function (forward and backward side by side) and its public function in the family's
   file: ``ops/elementwise.py``, ``reduction.py``, ``movement.py``, ``indexing.py``, ``matmul.py``
   or ``linalg.py``;
2. add one line to that family's table here, naming where the op shows;
3. add one parity case to ``tests/test_ops.py`` (``tests/test_op_table.py`` fails until you do).

A line reads ``name  places...``; ``alias=name`` gives a second name to the same function
(``subtract=sub``). The places:

``deepbox``
    a top-level function, ``deepbox.name(x, ...)`` (only where ``torch.name`` exists)
``method``
    a ``Tensor`` method, ``x.name(...)``
``inplace``
    the in-place method ``x.name_(...)``: ``ops/inplace.py``'s ``name_`` where it has one (the fast
    ``add_``, the shape-changing ``t_``), else ``inplace.inplace_variant``: the out-of-place result
    written into ``x``, recorded in the graph as PyTorch does

Operators (``x + y``) and the few methods whose signature differs from the function's
(``x.where(cond, y)``, ``x.softmax(dim)``) are bound by hand at the end of this file.
"""
from __future__ import annotations

from deepbox import creation as _creation
from deepbox.ops import complex as _cx
from deepbox.ops import elementwise as _ew
from deepbox.ops import indexing as _ix
from deepbox.ops import inplace as _ip
from deepbox.ops import linalg as _la
from deepbox.ops import matmul as _mm
from deepbox.ops import movement as _mv
from deepbox.ops import reduction as _rd
from deepbox.ops._dispatch import choose as _choose
from deepbox.tensor import Tensor

TABLE = {
    _ew: """
        add                    deepbox method inplace
        sub                    deepbox method inplace
        subtract=sub           deepbox method inplace
        rsub                   deepbox
        mul                    deepbox method inplace
        multiply=mul           deepbox method inplace
        div                    deepbox method inplace
        divide=div             deepbox method inplace
        true_divide=div        deepbox method inplace
        floor_divide           deepbox method inplace
        remainder              deepbox method inplace
        fmod                   deepbox method inplace
        pow                    deepbox method inplace
        float_power            deepbox method
        maximum                deepbox method
        minimum                deepbox method
        fmax                   deepbox method
        fmin                   deepbox method
        neg                    deepbox method inplace
        negative=neg           deepbox method inplace
        abs                    deepbox method inplace
        absolute=abs           deepbox method inplace
        exp                    deepbox method inplace
        exp2                   deepbox method inplace
        expm1                  deepbox method inplace
        log                    deepbox method inplace
        log1p                  deepbox method inplace
        log2                   deepbox method inplace
        log10                  deepbox method inplace
        sqrt                   deepbox method inplace
        rsqrt                  deepbox method inplace
        square                 deepbox method inplace
        reciprocal             deepbox method inplace
        sin                    deepbox method inplace
        cos                    deepbox method inplace
        tan                    deepbox method inplace
        atan                   deepbox method inplace
        arctan=atan            deepbox method inplace
        tanh                   deepbox method inplace
        sigmoid                deepbox method inplace
        erf                    deepbox method inplace
        frac                   deepbox method inplace
        sign                   deepbox method inplace
        sgn                    deepbox method inplace
        floor                  deepbox method inplace
        ceil                   deepbox method inplace
        round                  deepbox method inplace
        trunc                  deepbox method inplace
        fix=trunc              deepbox method inplace
        relu                   deepbox method inplace
        clamp                  deepbox method inplace
        clip=clamp             deepbox method inplace
        clamp_min              deepbox method inplace
        clamp_max              deepbox method inplace
        where                  deepbox
        lerp                   deepbox method inplace
        addcmul                deepbox method inplace
        addcdiv                deepbox method inplace
        eq                     deepbox method inplace
        ne                     deepbox method inplace
        lt                     deepbox method inplace
        le                     deepbox method inplace
        gt                     deepbox method inplace
        ge                     deepbox method inplace
        greater=gt             deepbox method inplace
        greater_equal=ge       deepbox method inplace
        less=lt                deepbox method inplace
        less_equal=le          deepbox method inplace
        not_equal=ne           deepbox method inplace
        logical_and            deepbox method inplace
        logical_or             deepbox method inplace
        logical_xor            deepbox method inplace
        logical_not            deepbox method inplace
        bitwise_and            deepbox method inplace
        bitwise_or             deepbox method inplace
        bitwise_xor            deepbox method inplace
        bitwise_not            deepbox method inplace
        isnan                  deepbox method
        isinf                  deepbox method
        isfinite               deepbox method
        isposinf               deepbox method
        isneginf               deepbox method
        nan_to_num             deepbox method inplace
        asin                   deepbox method inplace
        arcsin=asin            deepbox method inplace
        acos                   deepbox method inplace
        arccos=acos            deepbox method inplace
        sinh                   deepbox method inplace
        cosh                   deepbox method inplace
        asinh                  deepbox method inplace
        arcsinh=asinh          deepbox method inplace
        acosh                  deepbox method inplace
        arccosh=acosh          deepbox method inplace
        atanh                  deepbox method inplace
        arctanh=atanh          deepbox method inplace
        logaddexp              deepbox method
        logaddexp2             deepbox method
        copysign               deepbox method inplace
        bitwise_left_shift     deepbox method inplace
        bitwise_right_shift    deepbox method inplace
        isclose                deepbox method
        allclose               deepbox method
        equal                  deepbox method
        atan2                  deepbox method inplace
        arctan2=atan2          deepbox method inplace
    """,
    _rd: """
        sum                    deepbox method
        mean                   deepbox method
        nansum                 deepbox method
        nanmean                deepbox method
        var                    deepbox method
        std                    deepbox method
        var_mean               deepbox
        std_mean               deepbox
        prod                   deepbox method
        amax                   deepbox method
        amin                   deepbox method
        max                    deepbox method
        min                    deepbox method
        argmax                 deepbox method
        argmin                 deepbox method
        logsumexp              deepbox method
        softmax                deepbox
        log_softmax            deepbox
        cumsum                 deepbox method inplace
        cumprod                deepbox method inplace
        dist                   deepbox method
        sort                   deepbox method
        argsort                deepbox method
        topk                   deepbox method
        kthvalue               deepbox method
        median                 deepbox method
        any                    deepbox method
        all                    deepbox method
        count_nonzero          deepbox method
        bincount               deepbox method
        unique                 deepbox method
        cummax                 deepbox method
        cummin                 deepbox method
        logcumsumexp           deepbox method
        cdist                  deepbox
        searchsorted           deepbox
        bucketize              deepbox
        isin                   deepbox
        histc                  deepbox method
        trace                  deepbox method
        quantile               deepbox method
        nanquantile            deepbox method
    """,
    _mv: """
        reshape                deepbox method
        view                   method
        flatten                deepbox method
        unflatten              deepbox method
        squeeze                deepbox method inplace
        unsqueeze              deepbox method inplace
        permute                deepbox method
        transpose              deepbox method inplace
        swapaxes=transpose     deepbox method inplace
        swapdims=transpose     deepbox method inplace
        t                      deepbox method inplace
        adjoint                deepbox method
        movedim                deepbox method
        moveaxis=movedim       deepbox method
        expand                 method
        broadcast_to           deepbox method
        expand_as              method
        broadcast_tensors      deepbox
        broadcast_shapes       deepbox
        repeat                 method
        tile                   deepbox method
        repeat_interleave      deepbox method
        cat                    deepbox
        concat=cat             deepbox
        concatenate=cat        deepbox
        stack                  deepbox
        hstack                 deepbox
        vstack                 deepbox
        atleast_2d             deepbox
        split                  deepbox method
        chunk                  deepbox method
        tensor_split           deepbox method
        unbind                 deepbox method
        flip                   deepbox method
        fliplr                 deepbox method
        flipud                 deepbox method
        roll                   deepbox method
        tril                   deepbox method inplace
        triu                   deepbox method inplace
        diagonal               deepbox method
        diag                   deepbox method
        diag_embed             deepbox method
        select                 deepbox method
        narrow                 deepbox method
        contiguous             method
        clone                  deepbox method
        diff                   deepbox method
        cartesian_prod         deepbox
    """,
    _ix: """
        index_put              deepbox method inplace
        gather                 deepbox method
        scatter_add            deepbox method inplace
        scatter                deepbox method inplace
        index_select           deepbox method
        take                   deepbox method
        masked_fill            deepbox method inplace
        masked_select          deepbox method
        nonzero                deepbox method
        argwhere               deepbox method
        scatter_reduce         deepbox method inplace
        index_add              deepbox method inplace
        index_copy             deepbox method inplace
    """,
    _mm: """
        matmul                 deepbox method
        mm                     deepbox method
        bmm                    deepbox method
        mv                     deepbox method
        dot                    deepbox method
        inner                  deepbox method
        vdot=dot               deepbox method
        outer                  deepbox method
        ger=outer              deepbox method
        addmm                  deepbox method inplace
        baddbmm                deepbox method inplace
        einsum                 deepbox
        tensordot              deepbox
        kron                   deepbox method
    """,
    _cx: """
        real                   deepbox
        imag                   deepbox
        conj                   deepbox method
        conj_physical=conj     deepbox method
        resolve_conj           deepbox method
        angle                  deepbox method
        view_as_real           deepbox
        view_as_complex        deepbox
        complex                deepbox
        polar                  deepbox
    """,
    _la: """
        norm=tensor_norm       deepbox method
        det                    deepbox method
        inverse=inv            deepbox method
        slogdet                deepbox method
        pinverse=pinv          deepbox method
        matrix_power           deepbox method
        cholesky               deepbox method
        qr                     deepbox method
        svd=torch_svd          deepbox method
        cross=torch_cross      deepbox method
        renorm                 deepbox method inplace
    """,
}

__all__ = []


def _declare(module, table: str) -> None:
    """Bind every op of one family's table (see the module docstring)."""
    for line in table.strip().splitlines():
        name, *places = line.split()
        name, _, target = name.partition("=")
        fn = getattr(module, target or name)
        if "deepbox" in places:
            globals()[name] = fn
            __all__.append(name)
        if "method" in places:
            setattr(Tensor, name, fn)
        if "inplace" in places:
            own = getattr(_ip, name + "_", None) or getattr(_ip, (target or name) + "_", None)
            setattr(Tensor, name + "_", own or _ip.inplace_variant(fn, name + "_"))


for _module, _table in TABLE.items():
    _declare(_module, _table)


# ----------------------------------------------------------------------------- bound by hand
def _reflected(fn):
    return lambda self, other: fn(other, self)


def _fast_operator(cls, general):
    """``x + y`` on two tensors of one float dtype (or a float tensor and a Python float) skips the type
    promotion of ``add`` and goes straight to the Function: the engine's per-op cost, measured in
    ``benchmarks/bench_overhead.py``, is mostly this kind of Python dispatch."""

    def op(self, other):
        try:
            if other.__class__ is Tensor:
                if self._data.dtype is other._data.dtype and self._data.dtype.kind == "f":
                    return _choose(cls, self._data, other._data).apply(self, other)
            elif other.__class__ is float and self._data.dtype.kind == "f":
                return cls.apply(self, other)
        except ValueError:
            pass  # a broadcasting mismatch: the general path raises it with both shapes named
        return general(self, other)

    return op


Tensor.__add__ = _fast_operator(_ew.Add, _ew.add)
Tensor.__radd__ = _reflected(_ew.add)
Tensor.__sub__ = _fast_operator(_ew.Sub, _ew.sub)
Tensor.__rsub__ = _reflected(_ew.sub)
Tensor.__mul__ = _fast_operator(_ew.Mul, _ew.mul)
Tensor.__rmul__ = _reflected(_ew.mul)
Tensor.__truediv__ = _fast_operator(_ew.Div, _ew.div)
Tensor.__rtruediv__ = _reflected(_ew.div)
Tensor.__floordiv__ = _ew.floor_divide
Tensor.__rfloordiv__ = _reflected(_ew.floor_divide)
Tensor.__mod__ = _ew.remainder
Tensor.__rmod__ = _reflected(_ew.remainder)
Tensor.__pow__ = _ew.pow
Tensor.__rpow__ = _reflected(_ew.pow)
Tensor.__matmul__ = _mm.matmul
Tensor.__rmatmul__ = _reflected(_mm.matmul)
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
Tensor.__rand__ = _reflected(_ew.bitwise_and)
Tensor.__or__ = _ew.bitwise_or
Tensor.__ror__ = _reflected(_ew.bitwise_or)
Tensor.__xor__ = _ew.bitwise_xor
Tensor.__rxor__ = _reflected(_ew.bitwise_xor)
Tensor.__invert__ = _ew.bitwise_not
Tensor.__lshift__ = _ew.bitwise_left_shift
Tensor.__rlshift__ = _reflected(_ew.bitwise_left_shift)
Tensor.__rshift__ = _ew.bitwise_right_shift
Tensor.__rrshift__ = _reflected(_ew.bitwise_right_shift)
Tensor.unfold = _mv.unfold  # Tensor.unfold(dimension, size, step); torch.unfold does not exist
Tensor.__iadd__ = _ip.add_
Tensor.__isub__ = _ip.sub_
Tensor.__imul__ = _ip.mul_
Tensor.__itruediv__ = _ip.div_
Tensor.__getitem__ = _ix.getitem
Tensor.__setitem__ = _ip.setitem

# methods without a function of the same signature
Tensor.where = lambda self, condition, other: _ew.where(condition, self, other)
Tensor.softmax = lambda self, dim, dtype=None: _rd.softmax(self, dim, dtype)
Tensor.log_softmax = lambda self, dim, dtype=None: _rd.log_softmax(self, dim, dtype)
Tensor.zero_ = _ip.zero_
Tensor.fill_ = _ip.fill_
Tensor.copy_ = _ip.copy_
Tensor.uniform_ = _ip.uniform_
Tensor.normal_ = _ip.normal_
Tensor.bernoulli_ = _ip.bernoulli_
Tensor.bernoulli = lambda self, p=None, *, generator=None: _creation.bernoulli(self, p, generator=generator)
Tensor.multinomial = lambda self, num_samples, replacement=False, *, generator=None: _creation.multinomial(
    self, num_samples, replacement, generator=generator)
Tensor.exponential_ = _ip.exponential_
Tensor.random_ = _ip.random_
Tensor.T = property(lambda self: _mv.permute(self, *reversed(range(self.ndim))))
Tensor.mT = property(lambda self: _mv.transpose(self, -2, -1))
Tensor.H = property(lambda self: _cx.conj(self.T))  # the conjugate transpose (the transpose, for a real tensor)
Tensor.mH = property(lambda self: _cx.conj(self.mT))
Tensor.real = property(_cx.real)  # views: x.real.mul_(2) changes x
Tensor.imag = property(_cx.imag)
Tensor.view_as = lambda self, other: _mv.view(self, tuple(other.shape))
Tensor.reshape_as = lambda self, other: _mv.reshape(self, tuple(other.shape))
Tensor.type_as = lambda self, other: self.to(other.dtype)
Tensor._cast = lambda self, dtype: _ew.cast(self, dtype, explicit=True)  # Tensor.to()'s (tensor.py sits below ops)
Tensor.new_tensor = lambda self, data, dtype=None, **kw: _creation.tensor(data, dtype=dtype or self.dtype, **kw)
Tensor.new_zeros = lambda self, *size, dtype=None, **kw: _creation.zeros(*size, dtype=dtype or self.dtype, **kw)
Tensor.new_ones = lambda self, *size, dtype=None, **kw: _creation.ones(*size, dtype=dtype or self.dtype, **kw)
Tensor.new_empty = lambda self, *size, dtype=None, **kw: _creation.empty(*size, dtype=dtype or self.dtype, **kw)
Tensor.new_full = lambda self, size, fill_value, dtype=None, **kw: _creation.full(
    size, fill_value, dtype=dtype or self.dtype, **kw)


# PyTorch's NumPy-style keyword aliases (axis=, keepdims=, x1=/x2=) for every function and method
from deepbox.ops._aliases import accept_numpy_names as _accept_numpy_names  # noqa: E402

_accept_numpy_names(globals(), __all__, Tensor)

"""Sixteen float32 lanes as a numba value, for kernels that keep their accumulators in registers.

numba vectorises simple loops by itself, but a kernel whose accumulators must stay in registers across a
reduction loop (a direct convolution: 7 output pixels x 16 output channels, summed over the window) is
not one of them: accumulators in an array go through memory on every step, and numba's aliasing rules
keep LLVM from promoting them. ``F32x16`` is a numba type whose value is an LLVM ``<16 x float>``
(one AVX-512 register; two AVX2 or four SSE registers elsewhere, as LLVM lowers it), so that local
variables of this type are SSA values that LLVM keeps in registers.

Imported only by the compiled kernels (``_numba_conv``), and only when numba is installed. Every
function here is an ``intrinsic``: callable only from jitted code. Indices are element offsets into a
1-D contiguous float32 array and are neither bounds- nor wraparound-checked: the caller owns them.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = ["f32x16", "vzero", "vload", "vstore", "vbload", "vfma", "vadd", "vsub"]

_VT = ir.VectorType(ir.FloatType(), 16)
_I32 = ir.IntType(32)


class F32x16(types.Type):
    """Sixteen float32 lanes (an LLVM vector value)."""

    def __init__(self):
        super().__init__(name="F32x16")


f32x16 = F32x16()


@register_model(F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


def _is_f32_vector(arr):
    return isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C" and arr.dtype == types.float32


def _element_ptr(context, builder, aryty, ary, idx):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.gep(data, [idx])


def _splat(builder, s):
    v = builder.insert_element(ir.Constant(_VT, ir.Undefined), s, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), ir.Constant(ir.VectorType(_I32, 16), [0] * 16))


@intrinsic
def vzero(typingctx):
    """Sixteen zeros."""
    def codegen(context, builder, signature, args):
        return ir.Constant(_VT, [0.0] * 16)
    return f32x16(), codegen


@intrinsic
def vload(typingctx, arr, idx):
    """``arr[idx:idx + 16]`` as a vector."""
    if not (_is_f32_vector(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        p = _element_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.load(builder.bitcast(p, _VT.as_pointer()), align=4)
    return f32x16(arr, idx), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    """``arr[idx:idx + 16] = v``."""
    if not (_is_f32_vector(arr) and isinstance(idx, types.Integer) and v == f32x16):
        return None

    def codegen(context, builder, signature, args):
        p = _element_ptr(context, builder, signature.args[0], args[0], args[1])
        builder.store(args[2], builder.bitcast(p, _VT.as_pointer()), align=4)
        return context.get_dummy_value()
    return types.void(arr, idx, v), codegen


@intrinsic
def vbload(typingctx, arr, idx):
    """``arr[idx]`` in all sixteen lanes (one broadcast load, folded into the FMA on AVX-512)."""
    if not (_is_f32_vector(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        p = _element_ptr(context, builder, signature.args[0], args[0], args[1])
        return _splat(builder, builder.load(p, align=4))
    return f32x16(arr, idx), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, one rounding (``llvm.fma``)."""
    if not (a == f32x16 and b == f32x16 and c == f32x16):
        return None

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VT, [_VT, _VT, _VT]), "llvm.fma.v16f32")
        return builder.call(fn, args)
    return f32x16(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """``a + b`` lane by lane."""
    if not (a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], args[1])
    return f32x16(a, b), codegen


@intrinsic
def vsub(typingctx, a, b):
    """``a - b`` lane by lane."""
    if not (a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, signature, args):
        return builder.fsub(args[0], args[1])
    return f32x16(a, b), codegen

"""Matrix products: matmul (1-D, 2-D, batched with broadcasting), mm/bmm/mv/dot/outer, einsum."""
from __future__ import annotations

import string

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops._common import _as_tensor, _prepare, _promote_all, write_out
from deepbox.ops.elementwise import add, mul
from deepbox.ops.movement import unsqueeze

xp = backend.xp


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        n = ctx.needs_input_grad
        ctx.save_for_backward(a if n[1] else None, b if n[0] else None)
        ctx.nd = (a.ndim, b.ndim)
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
            # one large GEMM instead of a loop of small ones over the batch
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[1],))
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        na, nb = ctx.nd
        ga = gb = None
        if na == 1 and nb == 1:
            return (grad * b if b is not None else None), (grad * a if a is not None else None)
        if b is not None:  # gradient for a
            if nb == 1:
                ga = grad[..., None] * b
            elif na == 1:
                ga = (grad[..., None, :] @ xp.swapaxes(b, -1, -2))[..., 0, :]
            elif grad.ndim > 2 and nb == 2:
                ga = (grad.reshape(-1, grad.shape[-1]) @ b.T).reshape(grad.shape[:-1] + (b.shape[0],))
            else:
                ga = grad @ xp.swapaxes(b, -1, -2)
        if a is not None:  # gradient for b
            if na == 1:
                gb = a[:, None] * grad[..., None, :]
            elif nb == 1:
                gb = (xp.swapaxes(a, -1, -2) @ grad[..., None])[..., 0]
            elif na > 2 and nb == 2:
                gb = a.reshape(-1, a.shape[-1]).T @ grad.reshape(-1, grad.shape[-1])
            else:
                gb = xp.swapaxes(a, -1, -2) @ grad
        return ga, gb


def matmul(input, other, *, out=None):
    a, b = _prepare(_as_tensor(input), _as_tensor(other))
    sa, sb = a._data.shape, b._data.shape
    if len(sa) == 0 or len(sb) == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {len(sa)}D and {len(sb)}D")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        ra = f"{sa[-2] if len(sa) > 1 else 1}x{ka}"
        rb = f"{kb}x{sb[-1] if len(sb) > 1 else 1}"
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({ra} and {rb}); input shapes {tuple(sa)} and "
                           f"{tuple(sb)}")
    try:
        xp.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise RuntimeError(f"matmul: the batch dimensions of shapes {tuple(sa)} and {tuple(sb)} cannot be broadcast "
                           "together") from None
    return write_out(MatMul.apply(a, b), out, "matmul")


def mm(input, mat2, *, out=None):
    a, b = _as_tensor(input), _as_tensor(mat2)
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b, out=out)


def bmm(input, mat2, *, out=None):
    a, b = _as_tensor(input), _as_tensor(mat2)
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b, out=out)


def _no_dims(*ts):
    for t in ts:
        if t.ndim == 0:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")


def mv(input, vec):
    a, b = _as_tensor(input), _as_tensor(vec)
    _no_dims(a, b)
    if a.ndim != 2 or b.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got matrix of {a.ndim} and vector of {b.ndim} dims")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"size mismatch, got mat ({a.shape[0]}x{a.shape[1]}), vec ({b.shape[0]})")
    return matmul(a, b)


def dot(input, tensor):
    a, b = _as_tensor(input), _as_tensor(tensor)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.dtype != b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {a.dtype} and {b.dtype}")
    return matmul(a, b)


def vdot(input, other):
    return dot(input, other)


def inner(input, other):
    """Sum over the last dimension of both (a product when either is 0-d)."""
    a, b = _as_tensor(input), _as_tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(a.shape)} and {list(b.shape)}")
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 1]))


def outer(input, vec2):
    a, b = _as_tensor(input), _as_tensor(vec2)
    for name, t in (("self", a), ("vec2", b)):
        if t.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t.ndim}-D")
    return mul(unsqueeze(a, 1), unsqueeze(b, 0))


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    for name, t in (("mat1", mat1), ("mat2", mat2)):
        if _as_tensor(t).ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {_as_tensor(t).ndim}-D tensor")
    prod = matmul(mat1, mat2)
    if alpha != 1:
        prod = mul(prod, alpha)
    return add(mul(input, beta) if beta != 1 else input, prod)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    b1, b2 = _as_tensor(batch1), _as_tensor(batch2)
    _no_dims(b1, b2)
    prod = bmm(b1, b2)
    if alpha != 1:
        prod = mul(prod, alpha)
    return add(mul(input, beta) if beta != 1 else input, prod)


# ----------------------------------------------------------------------------- einsum
def _parse_einsum(equation, shapes):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise RuntimeError(f"einsum(): {len(ins)} operands in the equation {equation!r} but {len(shapes)} were given")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    # ellipsis dimensions are aligned to the right, as in broadcasting
    max_n = max((len(shape) - (len(sub) - 3) for sub, shape in zip(ins, shapes) if "..." in sub), default=0)
    ell = "".join(free[:max_n])
    out_ins = []
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            n = len(shape) - (len(sub) - 3)
            sub = sub.replace("...", ell[max_n - n:])
        if len(sub) != len(shape):
            raise RuntimeError(f"einsum(): the subscripts {sub!r} do not match an operand of shape {tuple(shape)}")
        out_ins.append(sub)
    if rhs is None:
        counts = {}
        for s in out_ins:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        ell_part = ell
        rhs = ell_part + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell_part))
    elif "..." in rhs:
        rhs = rhs.replace("...", ell)
    return out_ins, rhs


class EinsumFn(Function):
    """``einsum`` over explicit subscripts (``ins`` per operand, ``out``).

    The gradient for operand ``i`` is itself an einsum: the output gradient contracted with the other
    operands onto ``i``'s letters. Letters only ``i`` has (summed away) get a broadcast; a letter
    repeated within ``i`` (``'ii->i'``, a diagonal) gets its gradient written onto that diagonal.
    """

    @staticmethod
    def forward(ctx, *arrays, ins, out):
        ctx.ins, ctx.out = ins, out
        ctx.save_for_backward(*arrays)
        return xp.einsum(",".join(ins) + "->" + out, *arrays, optimize=len(arrays) > 2)

    @staticmethod
    def backward(ctx, grad):
        arrays = ctx.saved_tensors
        grads = []
        for i, (sub, a) in enumerate(zip(ctx.ins, arrays)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            letters = "".join(dict.fromkeys(sub))  # each letter once, in order of first appearance
            sizes = {c: a.shape[sub.index(c)] for c in letters}
            others = [(s, x) for j, (s, x) in enumerate(zip(ctx.ins, arrays)) if j != i]
            present = set(ctx.out).union(*[set(s) for s, _ in others])
            target = "".join(c for c in letters if c in present)
            eq = ",".join([ctx.out] + [s for s, _ in others]) + "->" + target
            g = xp.einsum(eq, grad, *[x for _, x in others], optimize=len(others) > 1)
            if target != letters:  # letters only this operand had: the gradient is constant along them
                g = xp.broadcast_to(g.reshape([sizes[c] if c in present else 1 for c in letters]),
                                    [sizes[c] for c in letters])
            if letters != sub:
                g = _onto_diagonals(g, sub, letters, a)
            grads.append(g)
        return tuple(grads)


def _onto_diagonals(g, sub, letters, a):
    """An array of ``a``'s shape, zero except where repeated letters of ``sub`` agree, which get ``g``."""
    full = xp.zeros(a.shape, g.dtype)
    # one axis per distinct letter, striding along all of its copies at once: a writable view of the diagonal
    strides = [sum(full.strides[k] for k, c in enumerate(sub) if c == letter) for letter in letters]
    diag = xp.lib.stride_tricks.as_strided(full, shape=g.shape, strides=strides)
    diag[...] = g
    return full


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [_as_tensor(o) for o in operands]
    if len({t._data.dtype for t in ts}) > 1:
        ts = _promote_all(ts)
    ins, out = _parse_einsum(equation, [t._data.shape for t in ts])
    return EinsumFn.apply(*ts, ins=ins, out=out)


def tensordot(a, b, dims=2):
    a, b = _as_tensor(a), _as_tensor(b)
    if isinstance(dims, int):
        if dims < 0 or dims > a.ndim or dims > b.ndim:
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims} (tensors of "
                               f"{a.ndim} and {b.ndim} dims)")
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
    letters = iter(string.ascii_lowercase)
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in da] + [c for k, c in enumerate(sb) if k not in db]
    return einsum("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)




def kron(input, other, *, out=None):
    """The Kronecker product: every element of ``input`` times the whole of ``other``, laid out blockwise.

    With both reshaped to the same rank, ``input`` to (a0, 1, a1, 1, ...) and ``other`` to (1, b0, 1, b1, ...),
    their broadcast product reshaped to (a0·b0, a1·b1, ...) is the result; the gradient is mul's.
    """
    from deepbox.ops.movement import reshape

    a, b = _as_tensor(input), _as_tensor(other)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    blocks = mul(reshape(a, sum(((s, 1) for s in sa), ())), reshape(b, sum(((1, s) for s in sb), ())))
    return write_out(reshape(blocks, tuple(x * y for x, y in zip(sa, sb))), out, "kron")

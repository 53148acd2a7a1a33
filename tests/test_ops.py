"""Every differentiable op against PyTorch: value and every input's gradient, one line per case."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from tests.helpers import check_op

R = np.random.default_rng(0)


def a(*shape, lo=-2.0, hi=2.0):
    return R.uniform(lo, hi, shape)


def pos(*shape):
    return R.uniform(0.5, 2.0, shape)


def idx(high, *shape):
    return R.integers(0, high, shape).astype(np.int64)


# (name, fn, inputs); fn is called with deepbox tensors and with torch tensors
CASES = [
    ("add_broadcast", lambda x, y: x + y, [a(3, 1, 4), a(5, 1)]),
    ("add_scalar", lambda x: 2.5 + x, [a(3, 4)]),
    ("add_alpha", lambda x, y: x.add(y, alpha=3), [a(3, 4), a(4)]),
    ("sub", lambda x, y: x - y, [a(2, 3), a(3)]),
    ("rsub", lambda x: 1 - x, [a(2, 3)]),
    ("mul", lambda x, y: x * y, [a(4, 1), a(1, 5)]),
    ("div", lambda x, y: x / y, [a(3, 4), pos(4)]),
    ("rdiv", lambda x: 2 / x, [pos(3, 4)]),
    ("pow_scalar", lambda x: x**3, [a(3, 4)]),
    ("pow_frac", lambda x: x**0.5, [pos(3, 4)]),
    ("pow_tensor", lambda x, y: x**y, [pos(3, 4), a(3, 4)]),
    ("rpow", lambda x: 2**x, [a(5)]),
    ("neg", lambda x: -x, [a(3)]),
    ("abs", lambda x: x.abs(), [a(3, 4)]),
    ("exp", lambda x: x.exp(), [a(3, 4)]),
    ("expm1", lambda x: x.expm1(), [a(3, 4)]),
    ("log", lambda x: x.log(), [pos(3, 4)]),
    ("log1p", lambda x: x.log1p(), [pos(3, 4)]),
    ("log2", lambda x: x.log2(), [pos(3, 4)]),
    ("sqrt", lambda x: x.sqrt(), [pos(3, 4)]),
    ("rsqrt", lambda x: x.rsqrt(), [pos(3, 4)]),
    ("sin", lambda x: x.sin(), [a(3, 4)]),
    ("cos", lambda x: x.cos(), [a(3, 4)]),
    ("tanh", lambda x: x.tanh(), [a(3, 4)]),
    ("sigmoid", lambda x: x.sigmoid(), [a(3, 4, lo=-30, hi=30)]),
    ("relu", lambda x: x.relu(), [a(3, 4)]),
    ("erf", lambda x: x.erf(), [a(50, lo=-6, hi=6)]),
    ("square", lambda x: x.square(), [a(3, 4)]),
    ("reciprocal", lambda x: x.reciprocal(), [pos(3, 4)]),
    ("clamp", lambda x: x.clamp(-0.5, 0.7), [a(3, 4)]),
    ("clamp_min", lambda x: x.clamp(min=0.1), [a(3, 4)]),
    ("maximum", lambda x, y: torch_or_db(x).maximum(x, y), [a(3, 4), a(4)]),
    ("minimum", lambda x, y: torch_or_db(x).minimum(x, y), [a(3, 4), a(3, 1)]),
    ("where", lambda x, y: torch_or_db(x).where(x > 0, x, y), [a(3, 4), a(4)]),
    ("floor", lambda x: x.floor() + x, [a(3, 4)]),
    ("ceil", lambda x: x.ceil() * x, [a(3, 4)]),
    ("round", lambda x: x.round() + x, [a(3, 4)]),
    ("sign", lambda x: x.sign() * x, [a(3, 4)]),
    # reductions
    ("sum_all", lambda x: x.sum(), [a(3, 4)]),
    ("sum_dim", lambda x: x.sum(1), [a(3, 4, 5)]),
    ("sum_dims_keep", lambda x: x.sum((0, 2), keepdim=True), [a(3, 4, 5)]),
    ("sum_neg_dim", lambda x: x.sum(-1), [a(3, 4)]),
    ("mean", lambda x: x.mean(), [a(3, 4)]),
    ("mean_dim", lambda x: x.mean(dim=(1,), keepdim=True), [a(3, 4, 2)]),
    ("var", lambda x: x.var(), [a(3, 4)]),
    ("var_dim_c0", lambda x: x.var(1, correction=0), [a(3, 4)]),
    ("std", lambda x: x.std(0, keepdim=True), [a(3, 4)]),
    ("prod", lambda x: x.prod(), [a(2, 3)]),
    ("prod_dim", lambda x: x.prod(1), [a(3, 4)]),
    ("prod_zero", lambda x: (x * torch_or_db(x).tensor([1.0, 0.0, 1.0], dtype=x.dtype)).prod(-1), [a(2, 3)]),
    ("max_all", lambda x: x.max(), [a(3, 4)]),
    ("max_dim", lambda x: x.max(1), [a(3, 4)]),
    ("min_dim_keep", lambda x: x.min(0, keepdim=True), [a(3, 4)]),
    ("max_ties", lambda x: (x * 0).max(), [a(3)]),
    ("amax", lambda x: x.amax(dim=(0, 1)), [a(3, 4, 2)]),
    ("amin", lambda x: x.amin(1), [a(3, 4)]),
    ("logsumexp", lambda x: x.logsumexp(1), [a(3, 4, lo=-50, hi=50)]),
    ("softmax", lambda x: x.softmax(1), [a(3, 4, 2)]),
    ("softmax_last", lambda x: x.softmax(-1), [a(3, 5, lo=-1e3, hi=1e3)]),
    ("log_softmax", lambda x: x.log_softmax(-1), [a(3, 5)]),
    ("cumsum", lambda x: x.cumsum(1), [a(3, 4)]),
    ("cumprod", lambda x: x.cumprod(0), [pos(3, 4)]),
    ("norm", lambda x: x.norm(), [a(3, 4)]),
    ("norm_dim", lambda x: x.norm(dim=1), [a(3, 4)]),
    ("norm_p1", lambda x: x.norm(p=1, dim=0), [a(3, 4)]),
    ("norm_p3", lambda x: x.norm(p=3), [a(3, 4)]),
    ("norm_inf", lambda x: x.norm(p=float("inf"), dim=1), [a(3, 4)]),
    ("norm_nuc", lambda x: x.norm(p="nuc"), [a(3, 4)]),
    ("det_alias", lambda x: torch_or_db(x).det(x), [a(3, 3)]),
    ("inverse_alias", lambda x: torch_or_db(x).inverse(x + 4 * torch_or_db(x).eye(3, dtype=x.dtype)), [a(3, 3)]),
    ("sort", lambda x: x.sort(1, descending=True)[0], [a(3, 6)]),
    ("topk", lambda x: x.topk(2, dim=1)[0], [a(3, 6)]),
    # movement
    ("reshape", lambda x: x.reshape(4, -1), [a(2, 3, 4)]),
    ("view", lambda x: x.view(6, 4), [a(2, 3, 4)]),
    ("flatten", lambda x: x.flatten(1), [a(2, 3, 4)]),
    ("unflatten", lambda x: x.unflatten(1, (2, 6)), [a(2, 12)]),
    ("squeeze", lambda x: x.squeeze(), [a(1, 3, 1, 4)]),
    ("squeeze_dim", lambda x: x.squeeze(2), [a(1, 3, 1, 4)]),
    ("unsqueeze", lambda x: x.unsqueeze(-1), [a(3, 4)]),
    ("permute", lambda x: x.permute(2, 0, 1), [a(2, 3, 4)]),
    ("transpose", lambda x: x.transpose(0, 2), [a(2, 3, 4)]),
    ("T", lambda x: x.T, [a(3, 4)]),
    ("mT", lambda x: x.mT, [a(2, 3, 4)]),
    ("expand", lambda x: x.expand(2, 3, 4), [a(3, 1)]),
    ("expand_neg", lambda x: x.expand(5, -1, 4), [a(3, 1)]),
    ("broadcast_to", lambda x: torch_or_db(x).broadcast_to(x, (2, 3, 4)), [a(4)]),
    ("repeat", lambda x: x.repeat(2, 1, 3), [a(3, 2)]),
    ("tile", lambda x: x.tile((2,)), [a(3, 2)]),
    ("cat", lambda x, y: torch_or_db(x).cat([x, y, x], 1), [a(2, 3), a(2, 1)]),
    ("stack", lambda x, y: torch_or_db(x).stack([x, y], -1), [a(2, 3), a(2, 3)]),
    ("split", lambda x: x.split(2, 1)[1] * 2, [a(3, 5)]),
    ("split_sizes", lambda x: x.split([1, 4], 1)[1], [a(3, 5)]),
    ("chunk", lambda x: x.chunk(3, 0)[2], [a(7, 2)]),
    ("unbind", lambda x: x.unbind(1)[1], [a(3, 4)]),
    ("flip", lambda x: x.flip(0, 1) if False else x.flip((0, 1)), [a(3, 4)]),
    ("roll", lambda x: x.roll(2, 1), [a(3, 5)]),
    ("roll_flat", lambda x: x.roll(3), [a(3, 5)]),
    ("pad", lambda x: fn_of(x).pad(x, (1, 2, 0, 1)), [a(2, 3, 4)]),
    ("pad_value", lambda x: fn_of(x).pad(x, (2, 1), value=3.0), [a(2, 3)]),
    ("pad_reflect", lambda x: fn_of(x).pad(x, (2, 1, 1, 2), mode="reflect"), [a(1, 2, 4, 5)]),
    ("pad_replicate", lambda x: fn_of(x).pad(x, (2, 3, 1, 1), mode="replicate"), [a(1, 2, 4, 5)]),
    ("pad_circular", lambda x: fn_of(x).pad(x, (2, 1), mode="circular"), [a(1, 2, 5)]),
    ("pad_negative", lambda x: fn_of(x).pad(x, (-1, 2)), [a(2, 5)]),
    ("tril", lambda x: x.tril(), [a(4, 4)]),
    ("triu_k", lambda x: x.triu(1), [a(3, 4, 5)]),
    ("gather", lambda x, i: x.gather(1, i), [a(3, 5), idx(5, 3, 4)]),
    ("gather_smaller", lambda x, i: x.gather(0, i), [a(4, 5), idx(4, 2, 3)]),
    ("scatter_add", lambda x, i, s: x.scatter_add(1, i, s), [a(3, 5), idx(5, 3, 4), a(3, 4)]),
    ("scatter", lambda x, i, s: x.scatter(1, i, s), [a(3, 5), np.array([[0, 2], [1, 3], [4, 0]]), a(3, 2)]),
    ("index_select", lambda x, i: x.index_select(1, i), [a(3, 5), idx(5, 7)]),
    ("index_select0", lambda x, i: x.index_select(0, i), [a(6, 4), idx(6, 10)]),
    ("masked_fill", lambda x: x.masked_fill(x > 0.5, -1.0), [a(3, 4)]),
    ("getitem_int", lambda x: x[1], [a(3, 4)]),
    ("getitem_slice", lambda x: x[1:, ::2], [a(3, 5)]),
    ("getitem_neg_step_free", lambda x: x[..., 1:3, None], [a(2, 3, 4)]),
    ("getitem_tensor", lambda x, i: x[i], [a(5, 3), idx(5, 8)]),
    ("getitem_tensor2", lambda x, i, j: x[i, j], [a(5, 3), idx(5, 4), idx(3, 4)]),
    ("getitem_mask", lambda x: x[x > 0], [a(4, 3)]),
    ("getitem_mixed", lambda x, i: x[:, i, 1:], [a(2, 5, 3), idx(5, 6)]),
    ("matmul_2d", lambda x, y: x @ y, [a(3, 4), a(4, 5)]),
    ("matmul_1d_1d", lambda x, y: x @ y, [a(4), a(4)]),
    ("matmul_1d_2d", lambda x, y: x @ y, [a(4), a(4, 3)]),
    ("matmul_2d_1d", lambda x, y: x @ y, [a(3, 4), a(4)]),
    ("matmul_batched", lambda x, y: x @ y, [a(2, 3, 4), a(2, 4, 5)]),
    ("matmul_broadcast", lambda x, y: x @ y, [a(2, 1, 3, 4), a(5, 4, 2)]),
    ("matmul_3d_2d", lambda x, y: x @ y, [a(2, 3, 4), a(4, 5)]),
    ("matmul_1d_3d", lambda x, y: x @ y, [a(4), a(2, 4, 5)]),
    ("matmul_3d_1d", lambda x, y: x @ y, [a(2, 3, 4), a(4)]),
    ("einsum_mm", lambda x, y: torch_or_db(x).einsum("ij,jk->ik", x, y), [a(3, 4), a(4, 5)]),
    ("einsum_bmm", lambda x, y: torch_or_db(x).einsum("bij,bjk->bik", x, y), [a(2, 3, 4), a(2, 4, 5)]),
    ("einsum_sum", lambda x: torch_or_db(x).einsum("ij->i", x), [a(3, 4)]),
    ("einsum_outer", lambda x, y: torch_or_db(x).einsum("i,j->ij", x, y), [a(3), a(4)]),
    ("einsum_ellipsis", lambda x, y: torch_or_db(x).einsum("...ij,...jk", x, y), [a(2, 3, 4), a(4, 2)]),
    ("einsum_implicit", lambda x, y: torch_or_db(x).einsum("ij,kj", x, y), [a(3, 4), a(5, 4)]),
    ("clone", lambda x: x.clone() * 2, [a(3)]),
    ("contiguous", lambda x: x.T.contiguous(), [a(3, 4)]),
    ("diagonal", lambda x: x.diagonal(), [a(3, 4)]),
    ("diagonal_off", lambda x: x.diagonal(1, 1, 2), [a(2, 3, 4)]),
    ("select", lambda x: x.select(1, 2), [a(3, 4)]),
    ("narrow", lambda x: x.narrow(1, 1, 2), [a(3, 4)]),
    ("lerp", lambda x, y: x.lerp(y, 0.3), [a(3), a(3)]),
    ("to_float32", lambda x: x.float() * 2, [a(3)]),
    ("chain", lambda x, w, b: (x @ w + b).relu().sum(), [a(4, 3), a(3, 2), a(2)]),
]


def torch_or_db(x):
    return deepbox if isinstance(x, deepbox.Tensor) else torch


def fn_of(x):
    return deepbox.nn.functional if isinstance(x, deepbox.Tensor) else torch.nn.functional


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_op_float64(name, fn, inputs):
    check_op(fn, *inputs, dtype=np.float64)


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_op_float32(name, fn, inputs):
    check_op(fn, *inputs, dtype=np.float32, rtol=2e-4, atol=2e-5)


GRADCHECK = [c for c in CASES if not c[0].startswith(("floor", "ceil", "round", "sign", "max_ties", "to_float32",
                                                        "clamp", "relu", "abs", "chain", "maximum", "minimum",
                                                        "norm_inf", "masked_fill", "where", "getitem_mask"))]


@pytest.mark.parametrize("name,fn,inputs", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, inputs):
    args = [deepbox.tensor(x, requires_grad=True) if x.dtype.kind == "f" else deepbox.tensor(x) for x in inputs]

    def f(*xs):
        out = fn(*xs)
        return out[0] if isinstance(out, tuple) else out

    assert deepbox.autograd.gradcheck(f, args)


def test_gradcheck_detects_a_wrong_gradient():
    class BadSquare(deepbox.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2 * g * x

    x = deepbox.tensor(a(4), requires_grad=True)
    with pytest.raises(deepbox.autograd.gradcheck_module.GradcheckError if hasattr(deepbox.autograd, "gradcheck_module")
                       else RuntimeError, match="Jacobian mismatch"):
        deepbox.autograd.gradcheck(BadSquare.apply, (x,))

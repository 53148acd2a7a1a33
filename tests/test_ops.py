"""Every differentiable op against PyTorch: value and every input's gradient, one line per case."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from deepbox.autograd.gradcheck import GradcheckError
from tests.helpers import check_op

R = np.random.default_rng(0)


def a(*shape, lo=-2.0, hi=2.0):
    return R.uniform(lo, hi, shape)


def pos(*shape):
    return R.uniform(0.5, 2.0, shape)


def idx(high, *shape):
    return R.integers(0, high, shape).astype(np.int64)


SPECIAL = np.array([1.5, np.inf, -np.inf, np.nan, -0.5])


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
    ("flip", lambda x: x.flip((0, 1)), [a(3, 4)]),
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
    # the rest of the elementwise family
    ("tan", lambda x: x.tan(), [a(3, 4, lo=-1.2, hi=1.2)]),
    ("atan", lambda x: x.atan(), [a(3, 4)]),
    ("exp2", lambda x: x.exp2(), [a(3, 4)]),
    ("log10", lambda x: x.log10(), [pos(3, 4)]),
    ("frac", lambda x: x.frac(), [a(3, 4)]),
    ("trunc", lambda x: x.trunc() * x, [a(3, 4)]),
    ("fmod", lambda x, y: x.fmod(y), [a(3, 4, lo=-5, hi=5), pos(4)]),
    ("remainder", lambda x, y: x.remainder(y), [a(3, 4, lo=-5, hi=5), pos(4)]),
    ("addcmul", lambda x, y, z: x.addcmul(y, z, value=0.5), [a(3, 4), a(3, 4), a(4)]),
    ("addcdiv", lambda x, y, z: x.addcdiv(y, z, value=2), [a(3, 4), a(3, 4), pos(4)]),
    ("float_power", lambda x: x.float_power(2.5), [pos(3, 4)]),
    ("median", lambda x: x.median(), [a(3, 5)]),
    ("median_dim", lambda x: x.median(1)[0], [a(3, 5)]),
    ("kthvalue", lambda x: x.kthvalue(2, 1)[0], [a(3, 5)]),
    ("repeat_interleave", lambda x: x.repeat_interleave(2, dim=1), [a(3, 4)]),
    ("take", lambda x, i: torch_or_db(x).take(x, i), [a(3, 4), idx(12, 5)]),
    ("diag_embed", lambda x: torch_or_db(x).diag_embed(x), [a(2, 3)]),
    ("addmm", lambda x, y, z: torch_or_db(x).addmm(x, y, z, beta=0.5, alpha=2), [a(3, 5), a(3, 4), a(4, 5)]),
    ("baddbmm", lambda x, y, z: torch_or_db(x).baddbmm(x, y, z), [a(2, 3, 5), a(2, 3, 4), a(2, 4, 5)]),
    ("tensordot", lambda x, y: torch_or_db(x).tensordot(x, y, dims=([1, 2], [0, 1])), [a(2, 3, 4), a(3, 4, 5)]),
    ("einsum_diagonal", lambda x: torch_or_db(x).einsum("ii->i", x), [a(3, 3)]),
    ("einsum_trace", lambda x: torch_or_db(x).einsum("ii", x), [a(3, 3)]),
    ("einsum_diag_sum", lambda x: torch_or_db(x).einsum("iij->j", x), [a(3, 3, 4)]),
    ("einsum_diag_product", lambda x, y: torch_or_db(x).einsum("ii,ij->j", x, y), [a(3, 3), a(3, 4)]),
    # comparisons, logic and bits (values only: no gradient flows through them)
    ("eq", lambda x, y: x.eq(y), [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])]),
    ("ne", lambda x, y: x.ne(y), [a(3, 4), a(4)]),
    ("lt", lambda x, y: x.lt(y), [a(3, 4), a(4)]),
    ("le", lambda x, y: x.le(y), [a(3, 4), a(4)]),
    ("ge", lambda x, y: x.ge(y), [a(3, 4), a(4)]),
    ("isclose", lambda x, y: x.isclose(y, atol=0.5), [a(3, 4), a(4)]),
    ("isfinite", lambda x: x.isfinite(), [SPECIAL]),
    ("isinf", lambda x: x.isinf(), [SPECIAL]),
    ("isnan", lambda x: x.isnan(), [SPECIAL]),
    ("isposinf", lambda x: x.isposinf(), [SPECIAL]),
    ("isneginf", lambda x: x.isneginf(), [SPECIAL]),
    ("nan_to_num", lambda x: x.nan_to_num(posinf=9.0) * x.isfinite(), [SPECIAL]),
    ("logical_and", lambda x, y: (x > 0).logical_and(y > 0), [a(3, 4), a(4)]),
    ("logical_or", lambda x, y: (x > 0).logical_or(y > 0), [a(3, 4), a(4)]),
    ("logical_xor", lambda x, y: (x > 0).logical_xor(y > 0), [a(3, 4), a(4)]),
    ("logical_not", lambda x: (x > 0).logical_not(), [a(3, 4)]),
    ("bitwise_and", lambda i, j: i.bitwise_and(j), [idx(16, 5), idx(16, 5)]),
    ("bitwise_or", lambda i, j: i.bitwise_or(j), [idx(16, 5), idx(16, 5)]),
    ("bitwise_xor", lambda i, j: i.bitwise_xor(j), [idx(16, 5), idx(16, 5)]),
    ("bitwise_not", lambda i: i.bitwise_not(), [idx(16, 5)]),
    ("floor_divide", lambda i, j: i.floor_divide(j), [np.array([7, -7, 5, -5]), np.array([2, 2, -3, -3])]),
    ("any", lambda x: (x > 0).any(), [a(3, 4)]),
    ("all", lambda x: (x > -1.5).all(1), [a(3, 4)]),
    ("count_nonzero", lambda x: x.relu().count_nonzero(dim=1), [a(3, 4)]),
    ("argmax", lambda x: x.argmax(1), [a(3, 4)]),
    ("argmin", lambda x: x.argmin(), [a(3, 4)]),
    ("argsort", lambda x: x.argsort(1, descending=True), [a(3, 4)]),
    # the rest of arithmetic and reductions
    ("rsub", lambda x, y: torch_or_db(x).rsub(x, y, alpha=2), [a(3, 4), a(4)]),
    ("sgn", lambda x: x.sgn() * x, [a(3, 4)]),
    ("fmax", lambda x, y: x.fmax(y), [a(3, 4), a(4)]),
    ("fmin", lambda x, y: x.fmin(y), [a(3, 4), a(4)]),
    ("clamp_min_method", lambda x: x.clamp_min(-0.3), [a(3, 4)]),
    ("clamp_max_method", lambda x: x.clamp_max(0.3), [a(3, 4)]),
    ("nansum", lambda x: x.nansum(), [a(3, 4)]),
    ("nanmean", lambda x: x.nanmean(1), [a(3, 4)]),
    ("var_mean", lambda x: torch_or_db(x).var_mean(x, 1), [a(3, 4)]),
    ("std_mean", lambda x: torch_or_db(x).std_mean(x, 0), [a(3, 4)]),
    ("dist", lambda x, y: x.dist(y, 3), [a(3, 4), a(4)]),
    # the rest of movement
    ("t", lambda x: x.t(), [a(3, 4)]),
    ("adjoint", lambda x: x.adjoint(), [a(2, 3, 4)]),
    ("movedim", lambda x: x.movedim(0, 2), [a(2, 3, 4)]),
    ("expand_as", lambda x, y: x.expand_as(y), [a(3, 1), a(3, 4)]),
    ("broadcast_tensors", lambda x, y: torch_or_db(x).broadcast_tensors(x, y), [a(3, 1), a(4)]),
    ("atleast_2d", lambda x: torch_or_db(x).atleast_2d(x), [a(4)]),
    ("hstack", lambda x, y: torch_or_db(x).hstack([x, y]), [a(2, 3), a(2, 2)]),
    ("vstack", lambda x, y: torch_or_db(x).vstack([x, y]), [a(2, 3), a(3)]),
    ("tensor_split", lambda x: x.tensor_split(3, 1)[1], [a(3, 7)]),
    ("fliplr", lambda x: x.fliplr(), [a(3, 4)]),
    ("flipud", lambda x: x.flipud(), [a(3, 4)]),
    ("diag", lambda x: x.diag(), [a(3, 3)]),
    ("diag_vector", lambda x: x.diag(1), [a(3)]),
    ("index_put", lambda x, v: x.index_put((torch_or_db(x).tensor([0, 2]),), v), [a(3, 4), a(2, 4)]),
    # the rest of the products
    ("mm", lambda x, y: x.mm(y), [a(3, 4), a(4, 2)]),
    ("bmm", lambda x, y: x.bmm(y), [a(2, 3, 4), a(2, 4, 5)]),
    ("mv", lambda x, y: x.mv(y), [a(3, 4), a(4)]),
    ("dot", lambda x, y: x.dot(y), [a(4), a(4)]),
    ("inner", lambda x, y: x.inner(y), [a(2, 4), a(3, 4)]),
    ("outer", lambda x, y: x.outer(y), [a(3), a(4)]),
    ("chain", lambda x, w, b: (x @ w + b).relu().sum(), [a(4, 3), a(3, 2), a(2)]),
    # complex numbers, built from real inputs and taken apart again (real outputs: gradients are compared as reals)
    ("complex_mul", lambda x, y: torch_or_db(x).view_as_real(
        torch_or_db(x).complex(x, y) * torch_or_db(x).complex(y, x)), [a(3, 4), a(3, 4)]),
    ("polar_div", lambda r, t: torch_or_db(r).view_as_real(
        torch_or_db(r).polar(r, t) / torch_or_db(r).complex(t, r)), [pos(3, 4), a(3, 4)]),
    ("view_as_complex_sub", lambda x, y: (torch_or_db(x).view_as_complex(x) - y).abs(), [a(3, 2), a(3)]),
    ("real_imag", lambda x: torch_or_db(x).real(torch_or_db(x).view_as_complex(x) * 2j) * torch_or_db(x).imag(
        torch_or_db(x).view_as_complex(x)), [a(4, 2)]),
    ("conj_angle", lambda x: (torch_or_db(x).view_as_complex(x) * x[:, 0]).conj().angle(), [a(4, 2)]),
    ("conj_physical", lambda x: torch_or_db(x).view_as_real(torch_or_db(x).view_as_complex(x).conj_physical() * 3),
     [a(4, 2)]),
    ("resolve_conj", lambda x: torch_or_db(x).view_as_real(torch_or_db(x).view_as_complex(x).conj().resolve_conj()),
     [a(4, 2)]),
    # the long tail that course code uses (more cases, modes and errors in tests/test_long_tail_ops.py)
    ("atan2", lambda x, y: x.atan2(y), [a(3, 4), a(4)]),
    ("arctan2", lambda x, y: torch_or_db(x).arctan2(x, y), [a(3, 4), a(3, 1)]),
    ("cdist", lambda x, y: torch_or_db(x).cdist(x, y), [a(2, 4, 3), a(5, 3)]),
    ("cdist_p1", lambda x, y: torch_or_db(x).cdist(x, y, p=1), [a(4, 3), a(5, 3)]),
    ("cdist_p3", lambda x, y: torch_or_db(x).cdist(x, y, p=3), [a(4, 3), a(5, 3)]),
    ("cdist_pinf", lambda x, y: torch_or_db(x).cdist(x, y, p=float("inf")), [a(4, 3), a(5, 3)]),
    ("searchsorted", lambda s, v: torch_or_db(v).searchsorted(s, v), [np.sort(a(6)), a(3, 4)]),
    ("searchsorted_rows", lambda s, v: torch_or_db(v).searchsorted(s, v, right=True), [np.sort(a(2, 6)), a(2, 3)]),
    ("bucketize", lambda v, b: torch_or_db(v).bucketize(v, b, right=True), [a(3, 4), np.sort(a(5))]),
    ("isin", lambda x, y: torch_or_db(x).isin(x, y), [idx(6, 3, 4), idx(6, 3)]),
    ("histc", lambda x: x.histc(bins=5, min=-1, max=1), [a(20)]),
    ("trace", lambda x: x.trace(), [a(3, 4)]),
    ("quantile", lambda x: x.quantile(0.3, dim=1), [a(4, 7)]),
    ("quantile_all", lambda x: torch_or_db(x).quantile(x, 0.65), [a(3, 5)]),
    ("quantile_q_keepdim", lambda x: x.quantile(torch_or_db(x).tensor([0.1, 0.5, 0.95], dtype=x.dtype), dim=0,
                                                keepdim=True), [a(5, 3)]),
    ("quantile_lower", lambda x: x.quantile(0.3, dim=1, interpolation="lower"), [a(4, 7)]),
    ("quantile_higher", lambda x: x.quantile(0.3, dim=1, interpolation="higher"), [a(4, 7)]),
    ("quantile_midpoint", lambda x: x.quantile(0.3, dim=1, interpolation="midpoint"), [a(4, 7)]),
    ("quantile_nearest", lambda x: x.quantile(0.3, dim=1, interpolation="nearest"), [a(4, 7)]),
    ("nanquantile", lambda x: x.masked_fill(x > 1.2, float("nan")).nanquantile(0.4, dim=1), [a(5, 6)]),
    ("diff", lambda x: x.diff(), [a(3, 5)]),
    ("diff_n2_prepend", lambda x, p: x.diff(n=2, dim=0, prepend=p), [a(4, 3), a(2, 3)]),
    ("cartesian_prod", lambda x, y: torch_or_db(x).cartesian_prod(x, y), [a(3), a(2)]),
    ("kron", lambda x, y: x.kron(y), [a(2, 3), a(3, 2, 2)]),
    ("index_add", lambda x, i, s: x.index_add(1, i, s, alpha=2), [a(3, 5), np.array([0, 2, 2, 4]), a(3, 4)]),
    ("index_copy", lambda x, i, s: x.index_copy(0, i, s), [a(5, 3), np.array([4, 0, 2]), a(3, 3)]),
    ("renorm", lambda x: x.renorm(2, 0, 2.0), [a(5, 3)]),
    ("renorm_p1_dim1", lambda x: x.renorm(1, 1, 2.5), [a(3, 4, 2)]),
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


# gradcheck needs a smooth function with a float result: not the piecewise ones, not comparisons
GRADCHECK = [c for c in CASES if not c[0].startswith(("floor", "ceil", "round", "sign", "max_ties", "to_float32",
                                                        "clamp", "relu", "abs", "chain", "maximum", "minimum",
                                                        "norm_inf", "masked_fill", "where", "getitem_mask", "trunc",
                                                        "sgn", "fmax", "fmin", "nan_to_num", "count_nonzero"))
             and all(x.dtype.kind == "f" for x in c[2])
             and c[0] not in ("eq", "ne", "lt", "le", "ge", "isclose", "logical_and", "logical_or", "logical_xor",
                              "logical_not", "any", "all", "argmax", "argmin", "argsort",
                              "searchsorted", "searchsorted_rows", "bucketize", "histc")]


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
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        deepbox.autograd.gradcheck(BadSquare.apply, (x,))

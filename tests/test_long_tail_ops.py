"""The long tail of ops that course code uses (atan2, cdist, searchsorted, bucketize, quantile, diff, kron,
trace, isin, histc, cartesian_prod, index_add/index_copy, renorm, bincount, tril/triu_indices, sampling
methods): modes, integer outputs and errors against PyTorch. One-line value-and-gradient cases for each
op are in ``tests/test_ops.py``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from tests.helpers import check_op

R = np.random.default_rng(5)
LIBS = pytest.mark.parametrize("lib", [deepbox, torch], ids=["deepbox", "torch"])


def lib_of(x):
    return deepbox if isinstance(x, deepbox.Tensor) else torch


def both(fn):
    """``fn`` run in deepbox and in torch: the same result (values and dtype)."""
    d, t = fn(deepbox), fn(torch)
    assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (d.dtype, t.dtype)
    np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-6, atol=1e-7)
    return d


# ----------------------------------------------------------------------------- atan2
def test_atan2_quadrants_integers_and_in_place():
    y, x = [1.0, 1.0, -1.0, -1.0, 0.0, 0.0], [1.0, -1.0, -1.0, 1.0, -1.0, 0.0]
    both(lambda L: L.atan2(L.tensor(y), L.tensor(x)))
    both(lambda L: L.atan2(L.tensor([1, 2]), L.tensor([3, 4])))  # integers give float32
    both(lambda L: L.tensor(y).arctan2_(L.tensor(x)))
    check_op(lambda a, b: a.atan2(b), R.uniform(-2, 2, (3, 4)), R.uniform(-2, 2, (3, 4)))


@LIBS
def test_atan2_in_place_on_integers_is_refused(lib):
    with pytest.raises(RuntimeError, match="can't be cast"):
        lib.tensor([1, 2]).atan2_(lib.tensor([1, 1]))


# ----------------------------------------------------------------------------- cdist
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, float("inf")])
def test_cdist_every_p(p):
    check_op(lambda a, b: lib_of(a).cdist(a, b, p=p), R.uniform(-2, 2, (2, 3, 4)), R.uniform(-2, 2, (5, 4)))


def test_cdist_many_rows_and_a_zero_distance():
    x = R.uniform(-1, 1, (30, 3))
    check_op(lambda a, b: lib_of(a).cdist(a, b), x, np.concatenate([x[:2], R.uniform(-1, 1, (28, 3))]),
             rtol=1e-5, atol=1e-6)


@LIBS
@pytest.mark.parametrize("call,match", [
    (lambda L: L.cdist(L.ones(3, 2), L.ones(4, 3)), "same number of columns"),
    (lambda L: L.cdist(L.ones(3), L.ones(4, 3)), "at least 2D"),
    (lambda L: L.cdist(L.ones(3, 2), L.ones(4, 2), p=-1), "non-negative p"),
    (lambda L: L.cdist(L.ones(3, 2, dtype=L.long), L.ones(4, 2, dtype=L.long)), "floating-point"),
    (lambda L: L.cdist(L.ones(3, 2), L.ones(4, 2, dtype=L.float64)), "expected scalar type Float"),
], ids=["columns", "1d", "negative_p", "integers", "dtypes"])
def test_cdist_errors(lib, call, match):
    with pytest.raises(RuntimeError, match=match):
        call(lib)


# ----------------------------------------------------------------------------- searchsorted / bucketize
SEQ = [1.0, 2.0, 2.0, 3.0, 5.0]
VALS = [[0.0, 2.0, 2.5], [5.0, 6.0, 3.0]]


@pytest.mark.parametrize("kw", [{}, {"right": True}, {"side": "right"}, {"side": "left"}, {"out_int32": True},
                                {"right": True, "side": "right"}])
def test_searchsorted_options(kw):
    both(lambda L: L.searchsorted(L.tensor(SEQ), L.tensor(VALS), **kw))


def test_searchsorted_sorter_rows_scalars_and_out():
    both(lambda L: L.searchsorted(L.tensor([3.0, 1.0, 2.0]), L.tensor([2.5, 0.5, 2.0]), sorter=L.tensor([1, 2, 0])))
    both(lambda L: L.searchsorted(L.tensor([[1.0, 2.0, 3.0], [0.0, 5.0, 9.0]]), L.tensor([[2.0], [6.0]])))
    both(lambda L: L.searchsorted(L.tensor(SEQ), 2.0))
    both(lambda L: L.searchsorted(L.tensor([1, 2, 3]), L.tensor([2.5, 2.0])))
    o = deepbox.zeros(2, dtype=deepbox.long)
    assert deepbox.searchsorted(deepbox.tensor(SEQ), deepbox.tensor([2.0, 4.0]), out=o) is o
    assert o.tolist() == [1, 4]


@LIBS
@pytest.mark.parametrize("call,match", [
    (lambda L: L.searchsorted(L.tensor([[1.0, 2.0]]), L.tensor([1.0, 2.0])), "first N-1 dimensions"),
    (lambda L: L.searchsorted(L.tensor(SEQ), L.tensor([1.0]), side="middle"), "side can only be"),
    (lambda L: L.searchsorted(L.tensor(SEQ), L.tensor([1.0]), side="left", right=True),
     "can't be set to opposites"),
    (lambda L: L.searchsorted(L.tensor(SEQ), L.tensor([1.0]), sorter=L.tensor([0, 1])), "same size"),
    (lambda L: L.searchsorted(L.tensor(SEQ), L.tensor([1.0]), sorter=L.tensor(SEQ)), "long dtype"),
    (lambda L: L.bucketize(L.tensor([1.0]), L.tensor([[1.0, 2.0]])), "must be 1 dimension"),
], ids=["shapes", "side", "opposites", "sorter_size", "sorter_dtype", "bucketize_2d"])
def test_searchsorted_errors(lib, call, match):
    with pytest.raises(RuntimeError, match=match):
        call(lib)


def test_bucketize_options():
    for kw in ({}, {"right": True}, {"out_int32": True}):
        both(lambda L, kw=kw: L.bucketize(L.tensor(VALS), L.tensor(SEQ), **kw))
    both(lambda L: L.bucketize(3, L.tensor(SEQ)))


# ----------------------------------------------------------------------------- quantile / nanquantile
MODES = ["linear", "lower", "higher", "midpoint", "nearest"]
Q = [0.0, 0.125, 0.25, 0.5, 1 / 3, 0.375, 0.7, 0.875, 1.0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", ["quantile", "nanquantile"])
def test_quantile_every_mode_values_and_gradients(mode, fn):
    x = R.uniform(-2, 2, (3, 9))
    x[0, 2] = x[0, 5]  # a tie: the gradient goes where sort puts it, in both libraries
    check_op(lambda a: getattr(a, fn)(lib_of(a).tensor(Q, dtype=a.dtype), dim=1, interpolation=mode), x)
    check_op(lambda a: getattr(a, fn)(0.4, dim=0, keepdim=True, interpolation=mode), x)


@pytest.mark.parametrize("fn", ["quantile", "nanquantile"])
def test_quantile_gradient_of_q(fn):
    """A q tensor that requires grad gets PyTorch's gradient under linear interpolation: the slope between
    the two values it falls between; the other modes are piecewise constant in q (no gradient)."""
    x = R.uniform(-2, 2, (3, 6))
    x[1, 2] = float("nan")
    check_op(lambda a, q: getattr(a, fn)(q, dim=1), x, np.array([0.1, 0.5, 0.73]))
    check_op(lambda a, q: getattr(a, fn)(q, dim=0, keepdim=True), x[:, :4], np.array([0.35]))
    check_op(lambda a, q: getattr(a, fn)(q, interpolation="nearest"), x[0], np.array([0.35, 0.9]))
    check_op(lambda a, q: getattr(a, fn)(q), np.array(0.4), np.array(0.3))


def test_quantile_of_a_0d_tensor_and_of_q_tensors():
    both(lambda L: L.quantile(L.tensor(2.5), 0.3))
    both(lambda L: L.quantile(L.tensor(2.5), 0.3, dim=0, keepdim=True))
    both(lambda L: L.quantile(L.arange(6.0).reshape(2, 3), L.tensor(0.5), dim=1, keepdim=True))
    both(lambda L: L.quantile(L.arange(6.0).reshape(2, 3), L.tensor([0.5]), dim=1, keepdim=True))
    both(lambda L: L.quantile(L.arange(6.0).reshape(2, 3), L.tensor([0.2, 0.9]), keepdim=True))


def test_quantile_nan_handling():
    nan = float("nan")
    rows = [[1.0, nan, 3.0, 4.0], [nan, nan, nan, nan], [4.0, 1.0, 2.0, 3.0]]
    for fn in ("quantile", "nanquantile"):
        for mode in MODES:
            both(lambda L, fn=fn, mode=mode: getattr(L, fn)(L.tensor(rows), L.tensor([0.0, 0.3, 1.0]), dim=1,
                                                           interpolation=mode))
    both(lambda L: L.nanquantile(L.tensor(rows[0]), 0.5))


@LIBS
@pytest.mark.parametrize("call,match", [
    (lambda L: L.quantile(L.tensor([1, 2, 3]), 0.5), "either float or double"),
    (lambda L: L.quantile(L.ones(3), 1.5), r"q must be in the range \[0, 1\] but got 1.5"),
    (lambda L: L.nanquantile(L.ones(3), -0.1), r"q must be in the range \[0, 1\]"),
    (lambda L: L.quantile(L.ones(3), L.tensor([0.5, 2.0])), r"q values must be in the range \[0, 1\]"),
    (lambda L: L.quantile(L.ones(3), L.tensor([[0.5]])), "scalar or 1D tensor"),
    (lambda L: L.quantile(L.ones(3), L.tensor([0.5], dtype=L.float64)), "same dtype as the input"),
    (lambda L: L.quantile(L.ones(3), 0.5, interpolation="cubic"), "interpolation must be one of"),
    (lambda L: L.quantile(L.ones(0), 0.5), "non-empty"),
], ids=["int", "q_big", "q_neg", "q_tensor_range", "q_2d", "q_dtype", "mode", "empty"])
def test_quantile_errors(lib, call, match):
    with pytest.raises(RuntimeError, match=match):
        call(lib)


# ----------------------------------------------------------------------------- diff, kron, trace, cartesian_prod
def test_diff_orders_dtypes_and_padding():
    both(lambda L: L.diff(L.tensor([1, 5, 2, 8]), n=2))
    both(lambda L: L.diff(L.tensor([1, 5, 2]), n=5))
    both(lambda L: L.diff(L.tensor([True, False, False, True])))
    both(lambda L: L.diff(L.arange(6.0).reshape(2, 3), n=0))
    both(lambda L: L.diff(L.arange(6.0).reshape(2, 3), dim=1, prepend=L.zeros(2, 1, dtype=L.long),
                          append=L.ones(2, 2)))
    check_op(lambda x, p, q: x.diff(n=3, dim=-1, prepend=p, append=q), R.normal(size=(2, 4)),
             R.normal(size=(2, 1)), R.normal(size=(2, 2)))


@LIBS
def test_diff_errors(lib):
    with pytest.raises(RuntimeError, match="at least one-dimensional"):
        lib.diff(lib.tensor(1.0))
    with pytest.raises(RuntimeError, match="order must be non-negative"):
        lib.diff(lib.ones(3), n=-1)
    with pytest.raises(RuntimeError, match="same dimension as input"):
        lib.diff(lib.ones(2, 3), prepend=lib.ones(3))


def test_kron_shapes_and_dtypes():
    both(lambda L: L.kron(L.tensor([1, 2]), L.tensor([[1.0, 2.0]])))
    both(lambda L: L.kron(L.tensor([[1, 2], [3, 4]]), L.tensor([[0, 1], [1, 0]])))
    check_op(lambda a, b: a.kron(b), R.normal(size=(3,)), R.normal(size=(2, 2)))


def test_trace_dtypes_and_errors():
    both(lambda L: L.trace(L.ones(2, 3, dtype=L.int32)))
    both(lambda L: L.arange(12.0).reshape(4, 3).trace())
    for lib in (deepbox, torch):
        with pytest.raises(RuntimeError, match="expected a matrix, but got tensor with dim 3"):
            lib.trace(lib.ones(2, 2, 2))
        with pytest.raises(NotImplementedError, match="Bool"):
            lib.trace(lib.ones(2, 2, dtype=lib.bool))


def test_cartesian_prod():
    both(lambda L: L.cartesian_prod(L.tensor([1, 2]), L.tensor([3, 4, 5]), L.tensor([6, 7])))
    both(lambda L: L.cartesian_prod(L.tensor([1.0, 2.0])))
    for lib in (deepbox, torch):
        with pytest.raises(RuntimeError, match="same dtype"):
            lib.cartesian_prod(lib.tensor([1, 2]), lib.tensor([1.0, 3.0]))
        with pytest.raises(RuntimeError, match="Expect a 1D vector"):
            lib.cartesian_prod(lib.ones(2, 2))


# ----------------------------------------------------------------------------- isin, histc, bincount
def test_isin_options_and_scalars():
    e, t = [[1, 2, 3], [4, 5, 6]], [2, 6, 9]
    for kw in ({}, {"invert": True}, {"assume_unique": True}):
        both(lambda L, kw=kw: L.isin(L.tensor(e), L.tensor(t), **kw))
    both(lambda L: L.isin(L.tensor([1.0, 2.0, 3.0]), L.tensor([2])))
    both(lambda L: L.isin(L.tensor(e), 2))
    both(lambda L: L.isin(2, L.tensor(t)))
    for lib in (deepbox, torch):
        with pytest.raises(RuntimeError, match="Unsupported input type encountered for isin"):
            lib.isin(lib.tensor([1.0]), lib.tensor([True]))


def test_histc_ranges():
    x = [0.0, 1.0, 2.5, 3.0, 7.0, 10.0, -1.0, 11.0]
    both(lambda L: L.histc(L.tensor(x), bins=4))
    both(lambda L: L.histc(L.tensor(x), bins=3, min=0, max=10))
    both(lambda L: L.histc(L.tensor(x, dtype=L.float64), bins=5, min=2, max=2))
    both(lambda L: L.histc(L.tensor([2.0, 2.0, 2.0]), bins=4))
    both(lambda L: L.tensor(x).histc(bins=2, min=1, max=3))
    both(lambda L: L.histc(L.tensor([1.0, 2.0, float("inf")]), bins=4, min=0, max=3))
    for dtype in ("float32", "float64"):  # values on the bin edges: PyTorch's rounding decides their bin
        for bins, lo, hi in ((10, 0, 1), (3, 0, 0.3), (7, -1.3, 2.1)):
            edges = np.linspace(lo, hi, 43).astype(dtype)
            both(lambda L, e=edges, b=bins, lo=lo, hi=hi: L.histc(L.tensor(e), bins=b, min=lo, max=hi))


@LIBS
@pytest.mark.parametrize("call,exc,match", [
    (lambda L: L.histc(L.tensor([1, 2, 3]), bins=3), NotImplementedError, "not implemented for 'Long'"),
    (lambda L: L.histc(L.ones(3), bins=3, min=3, max=1), RuntimeError, "max must be larger than min"),
    (lambda L: L.histc(L.ones(3), bins=0), RuntimeError, "bins must be > 0"),
    (lambda L: L.histc(L.tensor([1.0, float("inf")]), bins=4), RuntimeError, "is not finite"),
], ids=["int", "range", "bins", "infinite"])
def test_histc_errors(lib, call, exc, match):
    with pytest.raises(exc, match=match):
        call(lib)


def test_bincount_weights_dtypes_and_errors():
    both(lambda L: L.bincount(L.tensor([1, 1, 4])))
    both(lambda L: L.bincount(L.tensor([1, 1, 4]), minlength=7))
    both(lambda L: L.bincount(L.tensor([1, 1, 4]), L.tensor([0.5, 1.0, 2.0])))
    both(lambda L: L.bincount(L.tensor([1, 1, 4]), L.tensor([0.5, 1.0, 2.0], dtype=L.float64)))
    both(lambda L: L.bincount(L.tensor([1, 1, 4]), L.tensor([1, 2, 3])))
    both(lambda L: L.bincount(L.tensor([], dtype=L.long)))
    for lib in (deepbox, torch):
        with pytest.raises(RuntimeError, match="1-d non-negative integral"):
            lib.bincount(lib.tensor([-1, 2]))
        with pytest.raises(RuntimeError, match="1-d non-negative integral"):
            lib.bincount(lib.tensor([[1, 2]]))
        with pytest.raises(NotImplementedError, match="'Float'"):
            lib.bincount(lib.tensor([1.0, 2.0]))


def test_tril_triu_indices_signatures():
    for fn in ("tril_indices", "triu_indices"):
        for args in ((3, 3), (3, 5, 1), (4, 2, -1), (0, 3)):
            both(lambda L, fn=fn, args=args: getattr(L, fn)(*args))
        both(lambda L, fn=fn: getattr(L, fn)(3, 4, 1, dtype=L.int32))
        for lib in (deepbox, torch):
            with pytest.raises(NotImplementedError, match="'Float'"):
                getattr(lib, fn)(3, 3, dtype=lib.float32)
    assert deepbox.tril_indices(2, 2, device="cpu").tolist() == [[0, 1, 1], [0, 0, 1]]


# ----------------------------------------------------------------------------- index_add / index_copy
def test_index_add_and_copy_in_place_and_dims():
    both(lambda L: L.ones(3, 2).index_add_(0, L.tensor([0, 0, 2]), L.arange(6.0).reshape(3, 2), alpha=-1.5))
    both(lambda L: L.ones(3, 4, dtype=L.long).index_add(1, L.tensor([3, 1]), L.ones(3, 2, dtype=L.long), alpha=3))
    both(lambda L: L.zeros(3, 2).index_copy_(0, L.tensor([2, 0]), L.arange(4.0).reshape(2, 2)))
    both(lambda L: L.index_copy(L.zeros(2, 3), 1, L.tensor([1]), L.ones(2, 1)))
    both(lambda L: L.zeros(()).index_add(0, L.tensor([0]), L.ones(())))


def test_index_add_in_place_is_in_the_graph():
    def f(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        s = lib.tensor([[5.0, 6.0]], requires_grad=True)
        y = (x * 2).index_add_(0, lib.tensor([1]), s, alpha=3)
        (y ** 2).sum().backward()
        return x.grad, s.grad

    for d, t in zip(f(deepbox), f(torch)):
        np.testing.assert_allclose(d.numpy(), t.numpy())


@LIBS
@pytest.mark.parametrize("call,exc,match", [
    (lambda L: L.ones(3).index_add(0, L.tensor([0.0, 0.0]), L.ones(2)), RuntimeError, "int32/int64 for index"),
    (lambda L: L.ones(3).index_add(0, L.tensor([0, 5]), L.ones(2)), IndexError, "index out of range in self"),
    (lambda L: L.ones(3).index_add(0, L.tensor([0, 1]), L.ones(3)), RuntimeError, r"Number of indices \(2\)"),
    (lambda L: L.ones(3).index_add(0, L.tensor([0, 1]), L.ones(2, dtype=L.float64)), RuntimeError,
     "same scalar type"),
    (lambda L: L.ones(3, 2).index_add(0, L.tensor([0, 1]), L.ones(2, 3)), RuntimeError, "shape must match"),
    (lambda L: L.ones(3).index_add(0, L.tensor([[0, 1]]), L.ones(2)), IndexError, "supposed to be a vector"),
    (lambda L: L.ones(3).index_copy(0, L.tensor([0, 1]), L.ones(3)), IndexError, r"Number of indices \(2\)"),
    (lambda L: L.ones(3).index_copy(0, L.tensor([[0, 1]]), L.ones(2)), IndexError, "dimension 1 or 0"),
    (lambda L: L.ones(3).index_copy(0, L.tensor([0, 5]), L.ones(2)), IndexError, "index 5 is out of bounds"),
], ids=["float_index", "range", "count", "dtype", "slices", "index_2d", "copy_count", "copy_2d", "copy_range"])
def test_index_add_copy_errors(lib, call, exc, match):
    with pytest.raises(exc, match=match):
        call(lib)


# ----------------------------------------------------------------------------- renorm
def test_renorm_values_in_place_and_errors():
    x = R.normal(size=(4, 3, 2)) * 2
    for p, dim, maxnorm in ((2, 0, 1.0), (1, 2, 3.0), (3.5, -1, 0.5), (2, 1, 100.0)):
        check_op(lambda a, p=p, dim=dim, maxnorm=maxnorm: a.renorm(p, dim, maxnorm), x)
    both(lambda L: L.tensor(x).renorm_(2, 0, 1.0))
    for lib in (deepbox, torch):
        for call, match in ((lambda L: L.ones(3, 2).renorm(0, 0, 1), "non-positive-norm"),
                            (lambda L: L.ones(3, 2).renorm(2, 0, -1), "maxnorm to be >= 0"),
                            (lambda L: L.ones(3).renorm(2, 0, 1), "at least 2 dimensions"),
                            (lambda L: L.ones(3, 2, dtype=L.long).renorm(2, 0, 1), "floating point")):
            with pytest.raises(RuntimeError, match=match):
                call(lib)


# ----------------------------------------------------------------------------- sampling methods
def test_multinomial_method_shapes_seeds_and_statistics():
    p = deepbox.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 1.0, 1.0]])
    s = p.multinomial(4)
    assert s.dtype == deepbox.int64 and s.shape == (2, 4)
    assert sorted(s[1].tolist()) == [0, 1, 2, 3] and s[0, 3].item() == 1  # no repeats; the zero comes last
    g1, g2 = deepbox.Generator().manual_seed(3), deepbox.Generator().manual_seed(3)
    assert p.multinomial(6, True, generator=g1).tolist() == p.multinomial(6, replacement=True, generator=g2).tolist()
    never_last = deepbox.tensor([[0.3, 0.7, 0.0]]).multinomial(20000, replacement=True, generator=g1)
    assert never_last.max().item() == 1  # not even when a draw lands above the rounded cumulative total
    draws = deepbox.tensor([0.1, 0.0, 0.6, 0.3]).multinomial(20000, replacement=True, generator=g1)
    freq = np.bincount(draws.numpy(), minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.6, 0.3], atol=0.015)
    rows = deepbox.tensor([[0.1, 0.6, 0.3]]).expand(20000, 3)
    draws = rows.multinomial(2, generator=g1).numpy()
    assert (draws[:, 0] != draws[:, 1]).all()
    first = np.bincount(draws[:, 0], minlength=3) / 20000  # the first draw without replacement follows p
    np.testing.assert_allclose(first, [0.1, 0.6, 0.3], atol=0.015)


@LIBS
@pytest.mark.parametrize("call,match", [
    (lambda L: L.ones(2, 2, 2).multinomial(1), "1 or 2 dim"),
    (lambda L: L.ones(2).multinomial(0), "n_sample <= 0"),
    (lambda L: L.tensor([1, 1]).multinomial(1), "floating-point dtypes"),
    (lambda L: L.tensor([1.0, -1.0]).multinomial(1), "element < 0"),
    (lambda L: L.ones(2).multinomial(3), "without replacement"),
], ids=["3d", "zero", "int", "negative", "too_many"])
def test_multinomial_errors(lib, call, match):
    with pytest.raises(RuntimeError, match=match):
        call(lib)


def test_bernoulli_method():
    g = deepbox.Generator().manual_seed(0)
    p = deepbox.full((20000,), 0.3, dtype=deepbox.float64)
    b = p.bernoulli(generator=g)
    assert b.dtype == deepbox.float64 and set(np.unique(b.numpy())) <= {0.0, 1.0}
    assert abs(b.mean().item() - 0.3) < 0.015
    assert abs(deepbox.zeros(20000).bernoulli(0.8, generator=g).mean().item() - 0.8) < 0.015
    assert deepbox.tensor([0.0, 1.0]).bernoulli().tolist() == [0.0, 1.0]
    assert deepbox.zeros(2).bernoulli_(deepbox.tensor([1.0, 0.0])).tolist() == [1.0, 0.0]
    g1, g2 = deepbox.Generator().manual_seed(9), deepbox.Generator().manual_seed(9)
    assert p[:50].bernoulli(generator=g1).tolist() == p[:50].bernoulli(generator=g2).tolist()
    for lib in (deepbox, torch):
        with pytest.raises(RuntimeError, match="p_in >= 0 && p_in <= 1"):
            lib.bernoulli(lib.tensor([1.5]))
        with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
            lib.tensor([1, 0]).bernoulli()
        with pytest.raises(RuntimeError, match=r"expects p to be in \[0, 1\]"):
            lib.zeros(2).bernoulli_(1.5)

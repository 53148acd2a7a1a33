"""deepbox.linalg against torch.linalg (values and gradients, float64) and against finite differences."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from deepbox import linalg as LA
from deepbox.autograd import gradcheck
from tests.helpers import assert_close, check_op

rng = np.random.default_rng(0)


def spd(n, batch=()):
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def well(n, batch=()):
    return rng.standard_normal(batch + (n, n)) + 2 * n ** 0.5 * np.eye(n)


def mat(*shape):
    return rng.standard_normal(shape)


# ----------------------------------------------------------------------------- values and gradients vs torch
@pytest.mark.parametrize("batch", [(), (3,)])
def test_solve_matrix_rhs(batch):
    check_op(LA.solve, well(4, batch), mat(*batch, 4, 2), torch_fn=torch.linalg.solve)


def test_solve_vector_rhs_and_broadcast():
    check_op(lambda a, b: LA.solve(a, b), well(4, (2,)), mat(2, 4), torch_fn=torch.linalg.solve)
    check_op(lambda a, b: LA.solve(a, b), well(3, (2,)), mat(3, 5), torch_fn=torch.linalg.solve)
    check_op(lambda a, b: LA.solve(a, b), well(3), mat(3), torch_fn=torch.linalg.solve)


def test_solve_right():
    check_op(lambda a, b: LA.solve(a, b, left=False), well(3, (2,)), mat(2, 5, 3),
             torch_fn=lambda a, b: torch.linalg.solve(a, b, left=False))


@pytest.mark.parametrize("batch", [(), (2, 3)])
def test_inv(batch):
    check_op(LA.inv, well(4, batch), torch_fn=torch.linalg.inv)


@pytest.mark.parametrize("batch", [(), (3,)])
def test_det_slogdet(batch):
    check_op(LA.det, well(4, batch), torch_fn=torch.linalg.det)
    check_op(lambda a: tuple(LA.slogdet(a)), mat(*batch, 4, 4), torch_fn=lambda a: tuple(torch.linalg.slogdet(a)))


def test_det_gradient_at_singular_matrix():
    a = mat(4, 4)
    a[:, 3] = a[:, 0] + a[:, 1]  # rank 3: d det/dA = adj(A)ᵀ is nonzero although A⁻¹ does not exist
    b = np.stack([a, well(4)])
    check_op(LA.det, b, torch_fn=torch.linalg.det, atol=1e-8)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(upper):
    check_op(lambda a: LA.cholesky(a, upper=upper), spd(4, (2,)),
             torch_fn=lambda a: torch.linalg.cholesky(a, upper=upper))


def test_solve_triangular():
    a = np.tril(well(4, (2,)))
    check_op(lambda a, b: LA.solve_triangular(a, b, upper=False), a, mat(2, 4, 3),
             torch_fn=lambda a, b: torch.linalg.solve_triangular(a, b, upper=False))
    check_op(lambda a, b: LA.solve_triangular(a, b, upper=True, left=False), well(4), mat(3, 4),
             torch_fn=lambda a, b: torch.linalg.solve_triangular(a, b, upper=True, left=False))


@pytest.mark.parametrize("shape", [(6, 3), (3, 3), (3, 6)])
def test_lstsq_solution_and_gradient(shape):
    m, n = shape
    check_op(lambda a, b: LA.lstsq(a, b).solution, mat(2, m, n), mat(2, m, 2),
             torch_fn=lambda a, b: torch.linalg.lstsq(a, b).solution, rtol=1e-6, atol=1e-8)


def test_lstsq_outputs_follow_driver():
    a, b = mat(6, 3), mat(6, 2)
    for driver in ("gelsy", "gelsd", "gelss"):
        d = LA.lstsq(deepbox.tensor(a), deepbox.tensor(b), driver=driver)
        t = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        for name in ("solution", "residuals", "rank", "singular_values"):
            assert_close(getattr(d, name), getattr(t, name), what=f"{driver} {name}")
    x = LA.lstsq(deepbox.tensor(a), deepbox.tensor(b[:, 0])).solution
    assert_close(x, torch.linalg.lstsq(torch.tensor(a), torch.tensor(b[:, :1])).solution[:, 0])


def test_svd_and_svdvals():
    a = mat(2, 5, 3)
    d = LA.svd(deepbox.tensor(a))
    t = torch.linalg.svd(torch.tensor(a))
    assert_close(d.S, t.S)
    assert d.U.shape == t.U.shape and d.Vh.shape == t.Vh.shape
    recon = (d.U[..., :, :3] * d.S[..., None, :]) @ d.Vh
    assert_close(recon, torch.tensor(a))
    check_op(LA.svdvals, mat(2, 5, 3), torch_fn=torch.linalg.svdvals)
    check_op(LA.svdvals, mat(3, 6), torch_fn=torch.linalg.svdvals)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_svd_gradient_gauge_invariant(shape):
    # products u_i v_iᵀ and squared entries do not depend on each singular pair's sign
    def f(a, lib):
        U, S, Vh = lib.svd(a, full_matrices=False)
        return (U * U).sum(-2) * S + (Vh * Vh).sum(-1) * S ** 2 + (U[..., :, :1] @ Vh[..., :1, :]).sum()

    check_op(lambda a: f(a, LA) if isinstance(a, deepbox.Tensor) else f(a, torch.linalg), mat(*shape))
    a = deepbox.tensor(mat(*shape), requires_grad=True)
    assert gradcheck(lambda x: f(x, LA), (a,))


def test_eigh():
    a = spd(4, (2,))
    check_op(lambda a: LA.eigvalsh(a), a, torch_fn=torch.linalg.eigvalsh)

    def f(a, lib):
        w, V = lib.eigh(a)
        return w * 2 + (V * V * w[..., None, :]).sum(-1)  # sign-invariant in V

    check_op(lambda a: f(a, LA) if isinstance(a, deepbox.Tensor) else f(a, torch.linalg), a)


def test_qr_values():
    a = mat(5, 3)
    q, r = LA.qr(deepbox.tensor(a))
    assert_close(q @ r, torch.tensor(a))
    assert_close(q.T @ q, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert np.allclose(np.tril(r._data, -1), 0)
    assert_close(LA.qr(deepbox.tensor(a), mode="complete").Q.abs(),
                 torch.linalg.qr(torch.tensor(a), mode="complete").Q.abs(), atol=1e-12)


# ----------------------------------------------------------------------------- norms
@pytest.mark.parametrize("ord", [2, 1, 3.5, float("inf"), -float("inf"), 0])
def test_vector_norm(ord):
    x = mat(3, 5)
    check_op(lambda x: LA.vector_norm(x, ord), x, torch_fn=lambda x: torch.linalg.vector_norm(x, ord),
             grad=ord != 0)
    check_op(lambda x: LA.vector_norm(x, ord, dim=1, keepdim=True), x,
             torch_fn=lambda x: torch.linalg.vector_norm(x, ord, dim=1, keepdim=True), grad=ord != 0)


@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, float("inf"), -float("inf")])
def test_matrix_norm(ord):
    a = mat(2, 4, 3)
    check_op(lambda a: LA.matrix_norm(a, ord), a, torch_fn=lambda a: torch.linalg.matrix_norm(a, ord))
    check_op(lambda a: LA.matrix_norm(a, ord, dim=(0, 2), keepdim=True), a,
             torch_fn=lambda a: torch.linalg.matrix_norm(a, ord, dim=(0, 2), keepdim=True))


@pytest.mark.parametrize("args", [dict(), dict(ord=1), dict(ord="fro"), dict(ord="nuc"), dict(dim=0),
                                  dict(dim=(0, 1), ord=2), dict(ord=float("inf"), dim=1, keepdim=True)])
def test_norm_dispatch(args):
    check_op(lambda a: LA.norm(a, **args), mat(4, 3), torch_fn=lambda a: torch.linalg.norm(a, **args))


def test_norm_float32_keeps_dtype():
    a = mat(4, 4).astype(np.float32)
    for f, g in [(LA.norm, torch.linalg.norm), (LA.inv, torch.linalg.inv), (LA.det, torch.linalg.det)]:
        check_op(f, a + 4 * np.eye(4, dtype=np.float32), torch_fn=g, dtype=np.float32)


def test_extras_against_torch():
    a = mat(5, 3)
    assert_close(LA.pinv(deepbox.tensor(a)), torch.linalg.pinv(torch.tensor(a)))
    low = mat(5, 2) @ mat(2, 4)
    assert int(LA.matrix_rank(deepbox.tensor(low))) == int(torch.linalg.matrix_rank(torch.tensor(low))) == 2
    w = well(3)
    assert_close(LA.cond(deepbox.tensor(w)), torch.linalg.cond(torch.tensor(w)))
    assert_close(LA.cond(deepbox.tensor(w), 1), torch.linalg.cond(torch.tensor(w), 1))
    for n in (-2, 0, 3):
        check_op(lambda x, n=n: LA.matrix_power(x, n), w, torch_fn=lambda x, n=n: torch.linalg.matrix_power(x, n))
    check_op(lambda x, y: LA.cross(x, y), mat(4, 3), mat(4, 3), torch_fn=torch.linalg.cross)


# ----------------------------------------------------------------------------- finite differences
def test_gradcheck_compositions():
    a = deepbox.tensor(well(3), requires_grad=True)
    b = deepbox.tensor(mat(3, 2), requires_grad=True)
    s = deepbox.tensor(spd(3), requires_grad=True)
    assert gradcheck(lambda a, b: LA.solve(a, b), (a, b))
    assert gradcheck(lambda a: LA.inv(a) @ a.T, (a,))
    assert gradcheck(lambda a: LA.det(a) * LA.slogdet(a).logabsdet, (a,))
    # cholesky reads one triangle: check it as a function of a symmetric matrix, as PyTorch's own tests do
    assert gradcheck(lambda s: LA.cholesky(s + s.T), (s,))
    assert gradcheck(lambda s: LA.eigh(s + s.T).eigenvalues, (s,))
    assert gradcheck(lambda a: LA.norm(a, "nuc") + LA.norm(a, 2) + LA.norm(a, -1), (a,))
    t = deepbox.tensor(mat(5, 3), requires_grad=True)
    assert gradcheck(lambda t, c: LA.lstsq(t, c).solution, (t, deepbox.tensor(mat(5, 2), requires_grad=True)))


# ----------------------------------------------------------------------------- errors
def test_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="square"):
        LA.inv(deepbox.zeros(2, 3))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        LA.det(deepbox.zeros(3))
    with pytest.raises(LA.LinAlgError, match="singular"):
        LA.solve(deepbox.zeros(2, 2), deepbox.ones(2))
    with pytest.raises(LA.LinAlgError, match="positive-definite"):
        LA.cholesky(-deepbox.eye(2))
    with pytest.raises(RuntimeError, match="floating point"):
        LA.inv(deepbox.eye(2, dtype=deepbox.int64))
    with pytest.raises(RuntimeError, match="incompatible shapes"):
        LA.solve(deepbox.eye(3), deepbox.ones(2, 1))
    with pytest.raises(RuntimeError, match="not supported"):
        LA.matrix_norm(deepbox.eye(3), ord=3)
    with pytest.raises(RuntimeError, match="driver"):
        LA.lstsq(deepbox.eye(3), deepbox.ones(3, 1), driver="nope")
    assert deepbox.linalg is LA

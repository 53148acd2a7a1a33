"""Graph semantics, against PyTorch's behaviour: accumulation, retain_graph, no_grad, hooks, in-place safety."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import deepbox
from tests.helpers import assert_close


def both(arr, requires_grad=True):
    return deepbox.tensor(arr, requires_grad=requires_grad), torch.tensor(arr, requires_grad=requires_grad)


def test_fan_out_accumulates_both_contributions():
    x, tx = both(np.array([1.0, -2.0, 3.0]))
    for v in (x, tx):
        y = v * 2
        z = (y * y + y.exp() + v).sum()
        z.backward()
    assert_close(x.grad, tx.grad)


def test_grad_accumulates_across_backward_calls():
    x, tx = both(np.array([0.5, 1.5]))
    for _ in range(3):
        (x * x).sum().backward()
        (tx * tx).sum().backward()
    assert_close(x.grad, tx.grad)


def test_backward_twice_without_retain_graph_raises():
    x = deepbox.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x, tx = both(np.array([1.0, 2.0]))
    for v in (x, tx):
        y = (v.exp() * v).sum()
        y.backward(retain_graph=True)
        y.backward()
    assert_close(x.grad, tx.grad)


def test_no_grad_records_nothing_and_decorator_works():
    x = deepbox.ones(3, requires_grad=True)
    with deepbox.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @deepbox.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    with deepbox.no_grad():
        with deepbox.enable_grad():
            assert (x * 2).requires_grad
    with deepbox.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert deepbox.is_grad_enabled()


def test_hooks_modify_gradients_like_torch():
    x, tx = both(np.array([1.0, 2.0, 3.0]))
    for v in (x, tx):
        v.register_hook(lambda g: g * 10)
        y = v * v
        y.register_hook(lambda g: g + 1)
        y.sum().backward()
    assert_close(x.grad, tx.grad)


def test_hook_handle_remove():
    x = deepbox.tensor([1.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 100)
    h.remove()
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


def test_retain_grad_and_non_leaf_grad_warning():
    x, tx = both(np.array([1.0, 2.0]))
    y, ty = x * 3, tx * 3
    y.retain_grad()
    ty.retain_grad()
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close(y.grad, ty.grad)
    z = x * 2
    (z * z).sum().backward()
    with pytest.warns(UserWarning, match="not a leaf"):
        assert z.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None  # leaves never warn


def test_inplace_on_saved_tensor_raises():
    x = deepbox.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y.exp()  # exp saves its output
    z.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    a = x * 1
    b = a * x  # mul saves a for x's gradient
    a.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_through_a_view_is_detected():
    x = deepbox.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    z = y.exp()
    v = z[1:]
    v.mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        z.sum().backward()


def test_inplace_not_needed_by_backward_is_fine_and_correct():
    x, tx = both(np.array([1.0, 2.0, 3.0]))
    for v in (x, tx):
        y = v + 1  # add saves nothing
        y.mul_(3)
        y[0] = 5.0
        (y * y).sum().backward()
    assert_close(x.grad, tx.grad)


def test_inplace_on_leaf_requiring_grad_raises_but_works_under_no_grad():
    x = deepbox.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with deepbox.no_grad():
        x.add_(1)
        x -= 0.5
    np.testing.assert_allclose(x.detach().numpy(), [1.5, 1.5])


def test_setitem_gradient_matches_torch():
    x, tx = both(np.arange(6.0).reshape(2, 3))
    w, tw = both(np.array([0.5, -1.0]))
    for v, u in ((x, w), (tx, tw)):
        y = v * 2
        y[:, 1] = u * 3
        (y * y).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(w.grad, tw.grad)


def test_backward_on_non_scalar_needs_gradient():
    x = deepbox.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        (x * 2).backward()
    g = deepbox.tensor([1.0, 2.0, 3.0])
    (x * 2).backward(g)
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        deepbox.ones(2).sum().backward()


def test_autograd_grad_returns_without_touching_dot_grad():
    x, tx = both(np.array([1.0, 2.0]))
    y, ty = x, tx
    (gx,) = deepbox.autograd.grad((y**3).sum(), x)
    (tgx,) = torch.autograd.grad((ty**3).sum(), tx)
    assert_close(gx, tgx)
    assert x.grad is None
    z = deepbox.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used"):
        deepbox.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = deepbox.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None


def test_grad_of_intermediate():
    x, tx = both(np.array([1.0, 2.0]))
    h, th = x * 3, tx * 3
    (g,) = deepbox.autograd.grad((h * h).sum(), h)
    (tg,) = torch.autograd.grad((th * th).sum(), th)
    assert_close(g, tg)


def test_deep_graph_does_not_recurse():
    x = deepbox.tensor([1.0], dtype=deepbox.float64, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**20000], rtol=1e-6)


def test_graph_is_freed_after_backward():
    x = deepbox.ones(1000, requires_grad=True)
    y = x.exp()
    node = y.grad_fn
    y.sum().backward()
    assert node.saved_tensors is None


def test_detach_shares_memory_and_drops_graph():
    x = deepbox.ones(3, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    e = x.detach()
    e[0] = 7.0
    assert x[0].item() == 7.0


def test_requires_grad_only_for_floats():
    with pytest.raises(RuntimeError, match="floating point"):
        deepbox.tensor([1, 2]).requires_grad_()


def test_grad_dtype_follows_input_dtype():
    x = deepbox.ones(3, requires_grad=True)  # float32
    y = x.double() * deepbox.ones(3, dtype=deepbox.float64)
    y.sum().backward()
    assert x.grad.dtype == deepbox.float32


def test_grad_fn_names_and_leaf():
    x = deepbox.ones(2, requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf
    assert "MulBackward" in repr(y)
    assert y.grad_fn.next_functions[0][0].name() == "AccumulateGrad"


def test_custom_function_like_torch():
    class Cube(deepbox.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g

    x = deepbox.tensor([1.0, 2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
    assert deepbox.autograd.gradcheck(Cube.apply, (deepbox.tensor([0.3, -1.2], dtype=deepbox.float64,
                                                                   requires_grad=True),))


def test_create_graph_is_refused_clearly():
    x = deepbox.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="first-order"):
        (x * x).sum().backward(create_graph=True)

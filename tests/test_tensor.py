"""Tensor creation, dtypes, PyTorch's type promotion, conversion, repr, and error messages."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox

DT = {deepbox.float32: torch.float32, deepbox.float64: torch.float64, deepbox.float16: torch.float16,
      deepbox.int32: torch.int32, deepbox.int64: torch.int64, deepbox.uint8: torch.uint8, deepbox.bool: torch.bool}
TD = {v: k for k, v in DT.items()}


@pytest.mark.parametrize("data", [[1, 2], [1.0, 2], [True, False], 3, 2.5, [[1, 2], [3, 4]],
                                  np.arange(3, dtype=np.int32),
                                  np.ones(2, dtype=np.float64), np.ones(2, dtype=np.float16), []])
def test_tensor_dtype_inference_matches_torch(data):
    assert DT[deepbox.tensor(data).dtype] == torch.tensor(data).dtype


@pytest.mark.parametrize("da", list(DT))
@pytest.mark.parametrize("db", list(DT))
def test_promotion_between_tensors_matches_torch(da, db):
    a = deepbox.ones(2, dtype=da)
    b = deepbox.ones(2, dtype=db)
    ta, tb = torch.ones(2, dtype=DT[da]), torch.ones(2, dtype=DT[db])
    assert DT[(a + b).dtype] == (ta + tb).dtype
    assert DT[(a * b).dtype] == (ta * tb).dtype
    assert DT[(a / b).dtype] == (ta / tb).dtype
    assert DT[deepbox.promote_types(da, db)] == torch.promote_types(DT[da], DT[db])


@pytest.mark.parametrize("da", list(DT))
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_promotion_with_python_scalars_matches_torch(da, scalar):
    a, ta = deepbox.ones(3, dtype=da), torch.ones(3, dtype=DT[da])
    assert DT[(a + scalar).dtype] == (ta + scalar).dtype
    assert DT[(scalar * a).dtype] == (scalar * ta).dtype
    assert DT[(a / scalar).dtype] == (ta / scalar).dtype


@pytest.mark.parametrize("da,db", [(deepbox.float32, deepbox.float64), (deepbox.int32, deepbox.float64),
                                   (deepbox.int64, deepbox.float32), (deepbox.uint8, deepbox.int64)])
def test_zero_dim_tensors_promote_like_torch(da, db):
    a, ta = deepbox.ones(3, dtype=da), torch.ones(3, dtype=DT[da])
    b, tb = deepbox.tensor(2, dtype=db), torch.tensor(2, dtype=DT[db])
    assert DT[(a + b).dtype] == (ta + tb).dtype


def test_creation_functions():
    assert deepbox.zeros(2, 3).shape == (2, 3) and deepbox.zeros((2, 3)).dtype == deepbox.float32
    assert deepbox.ones([4]).sum().item() == 4
    assert deepbox.full((2,), 7).dtype == deepbox.int64
    assert deepbox.full((2,), 7.0).dtype == deepbox.float32
    np.testing.assert_array_equal(deepbox.arange(5).numpy(), torch.arange(5).numpy())
    np.testing.assert_allclose(deepbox.arange(0, 1, 0.1).numpy(), torch.arange(0, 1, 0.1).numpy())
    assert deepbox.arange(0, 1, 0.1).dtype == deepbox.float32
    np.testing.assert_allclose(deepbox.linspace(-1, 1, 7).numpy(), torch.linspace(-1, 1, 7).numpy(), atol=1e-6)
    np.testing.assert_array_equal(deepbox.eye(3, 2).numpy(), torch.eye(3, 2).numpy())
    assert deepbox.empty(2, 2).shape == (2, 2)
    x = deepbox.randn(3, 4)
    for f in (deepbox.zeros_like, deepbox.ones_like, deepbox.empty_like, deepbox.rand_like, deepbox.randn_like):
        assert f(x).shape == (3, 4) and f(x).dtype == deepbox.float32
    assert deepbox.full_like(x, 2.0).sum().item() == 24
    assert deepbox.randint(0, 10, (100,)).dtype == deepbox.int64
    assert sorted(deepbox.randperm(10).tolist()) == list(range(10))
    assert deepbox.normal(0.0, 1.0, (5,)).shape == (5,)
    assert deepbox.normal(deepbox.zeros(3), deepbox.ones(3)).shape == (3,)
    assert deepbox.rand(2, dtype=deepbox.float64).dtype == deepbox.float64


def test_random_is_reproducible_with_manual_seed_and_generator():
    deepbox.manual_seed(42)
    a = deepbox.randn(5)
    deepbox.manual_seed(42)
    b = deepbox.randn(5)
    assert deepbox.equal(a, b)
    g = deepbox.Generator().manual_seed(3)
    g2 = deepbox.Generator().manual_seed(3)
    assert deepbox.equal(deepbox.rand(4, generator=g), deepbox.rand(4, generator=g2))
    state = g.get_state()
    x = deepbox.rand(3, generator=g)
    g.set_state(state)
    assert deepbox.equal(x, deepbox.rand(3, generator=g))
    r = deepbox.rand(10000)
    assert 0 <= r.min().item() and r.max().item() < 1 and abs(r.mean().item() - 0.5) < 0.02


def test_from_numpy_shares_memory_and_numpy_roundtrip():
    arr = np.zeros(3, dtype=np.float32)
    t = deepbox.from_numpy(arr)
    arr[0] = 5
    assert t[0].item() == 5
    assert t.numpy() is arr
    with pytest.raises(RuntimeError, match="requires grad"):
        deepbox.ones(2, requires_grad=True).numpy()


def test_conversions_and_attributes():
    x = deepbox.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert x.size() == (2, 2) and x.size(1) == 2 and x.dim() == 2 and x.ndim == 2 and x.numel() == 4
    assert x.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert x[0, 0].item() == 1.5 and float(x[1, 1]) == 4.0
    assert x.to(deepbox.float64).dtype == deepbox.float64
    assert x.double().dtype == deepbox.float64 and x.long().dtype == deepbox.int64 and x.float() is x
    assert x.to("cpu") is x and str(x.device) == "cpu"
    assert x.T.shape == (2, 2) and x.mT.shape == (2, 2)
    assert x.contiguous() is x and not x.T.is_contiguous()
    assert x.long().tolist() == [[1, 2], [3, 4]]
    assert repr(deepbox.Size([2, 3])) == "deepbox.Size([2, 3])"
    assert x.shape == torch.Size([2, 2])


def test_repr_like_torch():
    assert repr(deepbox.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(deepbox.tensor([1.5, -2.0])) == repr(torch.tensor([1.5, -2.0]))
    assert repr(deepbox.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(deepbox.tensor([1.0], dtype=deepbox.float64)) == "tensor([1.], dtype=deepbox.float64)"
    assert repr(deepbox.ones(2, requires_grad=True)) == "tensor([1., 1.], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(deepbox.ones(2, requires_grad=True) * 2)


def test_device_arguments_are_accepted_and_other_devices_refused():
    assert deepbox.zeros(2, device="cpu").shape == (2,)
    assert deepbox.device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="CPU only"):
        deepbox.zeros(2).to("cuda")
    assert not deepbox.cuda.is_available()


def test_broadcast_error_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4,\)"):
        deepbox.ones(2, 3) + deepbox.ones(4)


def test_matmul_error_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4, 5\)"):
        deepbox.ones(2, 3) @ deepbox.ones(4, 5)


def test_float_index_error_says_what_is_expected():
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        deepbox.ones(3)[deepbox.tensor([0.0, 1.0])]
    with pytest.raises(RuntimeError, match="int64 for index"):
        deepbox.ones(3, 2).gather(1, deepbox.tensor([[0.0], [1.0], [0.0]]))


def test_reshape_errors():
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        deepbox.ones(2, 3).reshape(4, 2)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        deepbox.ones(2, 3).T.view(6)


def test_max_with_dim_returns_values_and_indices():
    x = deepbox.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    v, i = x.max(1)
    assert v.tolist() == [5.0, 7.0] and i.tolist() == [1, 0]
    r = x.max(dim=0)
    assert r.values.tolist() == [7.0, 5.0, 3.0] and r.indices.dtype == deepbox.int64


def test_comparisons_and_logical_ops():
    x = deepbox.tensor([1, 2, 3])
    assert (x > 1).tolist() == [False, True, True]
    assert ((x > 1) & (x < 3)).tolist() == [False, True, False]
    assert (~(x == 2)).tolist() == [True, False, True]
    assert deepbox.where(x > 1, x, 0).tolist() == [0, 2, 3]


def test_integer_division_and_floor_divide_like_torch():
    a, b = deepbox.tensor([7, -7]), deepbox.tensor([2, 2])
    ta, tb = torch.tensor([7, -7]), torch.tensor([2, 2])
    assert (a / b).tolist() == (ta / tb).tolist()
    assert (a // b).tolist() == (ta // tb).tolist()
    assert (a % b).tolist() == (ta % tb).tolist()


def test_ndarray_operand_defers_to_tensor():
    y = np.ones(3, dtype=np.float32) + deepbox.ones(3)
    assert isinstance(y, deepbox.Tensor)


def test_inplace_ops_write_through_views():
    x = deepbox.zeros(2, 3)
    row = x[0]
    row.add_(1)
    x[1, 1:] = 5.0
    assert x.tolist() == [[1, 1, 1], [0, 5, 5]]
    x.zero_()
    assert x.sum().item() == 0
    x.fill_(2)
    assert x.sum().item() == 12
    with pytest.raises(RuntimeError, match="can't be cast"):
        deepbox.zeros(2, dtype=deepbox.int64).add_(1.5)

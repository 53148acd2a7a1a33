"""Complex tensors: dtypes and their promotion, creation and printing, the ops that take complex numbers apart
and put them together, gradients (PyTorch's convention, checked against torch and central differences), and
clear errors from the ops that do not support them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox

R = np.random.default_rng(5)


def crand(*shape, dtype=np.complex128):
    return (R.standard_normal(shape) + 1j * R.standard_normal(shape)).astype(dtype)


def lib_of(x):
    return deepbox if isinstance(x, deepbox.Tensor) else torch


# ----------------------------------------------------------------------------- dtypes
def test_dtype_objects_match_pytorch():
    for name in ("complex64", "complex128", "cfloat", "cdouble"):
        d, t = getattr(deepbox, name), getattr(torch, name)
        assert repr(d) == repr(t).replace("torch", "deepbox")
        assert (d.is_complex, d.is_floating_point, d.is_signed, d.itemsize) == \
            (t.is_complex, t.is_floating_point, t.is_signed, t.itemsize)
    assert deepbox.cfloat is deepbox.complex64 and deepbox.cdouble is deepbox.complex128
    assert deepbox.finfo(deepbox.complex64).eps == torch.finfo(torch.complex64).eps


NAMES = ["complex64", "complex128", "float32", "float64", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("b", NAMES)
@pytest.mark.parametrize("a", ["complex64", "complex128"])
def test_promote_types_matches_pytorch(a, b):
    got = deepbox.promote_types(getattr(deepbox, a), getattr(deepbox, b))
    assert got.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b))).removeprefix("torch.")


OPERANDS = {  # (description, how to make it in a library): tensors with dimensions, 0-d tensors, Python scalars
    "f32": lambda lib: lib.ones(2), "f64": lambda lib: lib.ones(2, dtype=lib.float64),
    "i64": lambda lib: lib.ones(2, dtype=lib.int64), "c64": lambda lib: lib.ones(2, dtype=lib.complex64),
    "c128": lambda lib: lib.ones(2, dtype=lib.complex128), "0d_c64": lambda lib: lib.tensor(1j),
    "0d_c128": lambda lib: lib.tensor(1j, dtype=lib.complex128),
    "0d_f64": lambda lib: lib.tensor(2.0, dtype=lib.float64),
    "1j": lambda lib: 1j, "2.5": lambda lib: 2.5, "3": lambda lib: 3,
}
PAIRS = [("f32", "1j"), ("f64", "1j"), ("i64", "1j"), ("f32", "0d_c128"), ("f64", "0d_c64"), ("c64", "0d_f64"),
         ("c64", "f64"), ("c64", "i64"), ("c64", "c128"), ("c64", "2.5"), ("c128", "3"), ("i64", "0d_c64"),
         ("c64", "c64")]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("left,right", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_arithmetic_result_dtype_and_value_match_pytorch(op, left, right):
    d = getattr(deepbox, op)(OPERANDS[left](deepbox), OPERANDS[right](deepbox))
    t = getattr(torch, op)(OPERANDS[left](torch), OPERANDS[right](torch))
    assert d.dtype.name == str(t.dtype).removeprefix("torch.")
    np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------- creation, printing, conversion
@pytest.mark.parametrize("data", [[1 + 2j, 3 - 1j], 1 + 2j, [[0.5 + 1.25j, 1 - 0.3j]], [1.0, 2j]],
                         ids=["list", "scalar", "nested", "mixed"])
@pytest.mark.parametrize("dtype", [None, "complex128"])
def test_tensor_from_python_complex_prints_as_pytorch(data, dtype):
    d = deepbox.tensor(data, dtype=dtype and getattr(deepbox, dtype))
    t = torch.tensor(data, dtype=dtype and getattr(torch, dtype))
    assert d.dtype.name == str(t.dtype).removeprefix("torch.")
    assert repr(d) == repr(t).replace("torch.", "deepbox.")
    assert d.type() == t.type().replace("torch.", "deepbox.")
    np.testing.assert_allclose(np.array(d.tolist()), np.array(t.tolist()), rtol=1e-7)


@pytest.mark.parametrize("np_dtype", [np.complex64, np.complex128])
def test_numpy_complex_arrays_keep_their_dtype(np_dtype):
    arr = crand(2, 3, dtype=np_dtype)
    for make in (deepbox.from_numpy, deepbox.tensor, deepbox.as_tensor):
        t = make(arr)
        assert t.dtype.name == np.dtype(np_dtype).name and t.is_complex() and deepbox.is_complex(t)
        np.testing.assert_array_equal(t.numpy(), arr)
    assert deepbox.from_numpy(arr).numpy() is not None and not deepbox.ones(2).is_complex()
    assert deepbox.zeros(2, dtype=deepbox.cfloat).dtype is deepbox.complex64
    assert deepbox.tensor(np.complex128(1 + 1j)).dtype is deepbox.complex128  # a NumPy scalar keeps its dtype
    assert deepbox.tensor(1 + 2j).item() == 1 + 2j


def test_random_complex_tensors_have_both_parts():
    deepbox.manual_seed(0)
    z = deepbox.randn(20000, dtype=deepbox.cfloat)
    assert z.dtype is deepbox.complex64
    np.testing.assert_allclose([z.real.var().item(), z.imag.var().item()], [0.5, 0.5], atol=0.03)  # as torch.randn
    u = deepbox.rand(20000, dtype=deepbox.cdouble)
    assert u.dtype is deepbox.complex128 and 0 <= u.imag.min().item() and u.imag.max().item() < 1
    assert abs(u.imag.mean().item() - 0.5) < 0.02


def test_conjugate_transpose():
    arr = crand(2, 3)
    d, t = deepbox.tensor(arr), torch.tensor(arr)
    np.testing.assert_array_equal(d.mH.numpy(), t.mH.resolve_conj().numpy())
    np.testing.assert_array_equal(d.H.numpy(), t.H.resolve_conj().numpy())
    assert deepbox.ones(2, 3).mH.shape == (3, 2)


def test_to_and_from_complex():
    x = deepbox.tensor([1.5, -2.0], requires_grad=True)
    z = x.to(deepbox.complex64)
    assert z.dtype is deepbox.complex64 and z.requires_grad
    (z * (1 + 1j)).imag.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        r = deepbox.tensor([1 + 2j]).float()
    assert r.tolist() == [1.0]


# ----------------------------------------------------------------------------- parts and views
def test_real_and_imag_are_views():
    d, t = deepbox.tensor([1 + 2j, 3 - 1j]), torch.tensor([1 + 2j, 3 - 1j])
    for x in (d, t):
        x.real.add_(1)
        x.imag.mul_(2)
    assert d.tolist() == t.tolist()
    v = deepbox.view_as_real(d)
    v[0, 1] = 7.0
    assert d.tolist()[0] == 2 + 7j
    assert deepbox.view_as_complex(deepbox.tensor([[1.0, 2.0]])).tolist() == [1 + 2j]
    x = deepbox.ones(3)
    assert deepbox.real(x) is x and x.conj() is x and deepbox.angle(-x).tolist() == pytest.approx([np.pi] * 3)


def test_view_as_real_of_a_strided_complex_tensor():
    arr = crand(4, 6)
    d, t = deepbox.tensor(arr)[:, ::2], torch.tensor(arr)[:, ::2]
    np.testing.assert_array_equal(deepbox.view_as_real(d).numpy(), torch.view_as_real(t).numpy())


@pytest.mark.parametrize("call,match", [
    (lambda lib: lib.imag(lib.ones(2)), "imag is not implemented for tensors with non-complex dtypes"),
    (lambda lib: lib.view_as_real(lib.ones(2)), "view_as_real is only supported for complex tensors"),
    (lambda lib: lib.view_as_complex(lib.ones(3, 3)), "Tensor must have a last dimension of size 2"),
    (lambda lib: lib.complex(lib.ones(2), lib.ones(2, dtype=lib.float64)), "(?i)expected"),
    (lambda lib: lib.complex(lib.ones(2, dtype=lib.int64), lib.ones(2, dtype=lib.int64)), "Expected both inputs"),
    (lambda lib: lib.polar(lib.ones(2), lib.ones(2, dtype=lib.float64)), "(?i)expected"),
    (lambda lib: lib.tensor(1j, requires_grad=True).backward(), "real scalar outputs"),
], ids=["imag_real", "view_as_real", "view_as_complex", "complex_dtypes", "complex_ints", "polar_dtypes",
        "backward_complex"])
def test_bad_input_raises_as_pytorch(call, match):
    for lib in (deepbox, torch):
        with pytest.raises(RuntimeError, match=match):
            call(lib)


@pytest.mark.parametrize("call", [
    lambda x: x < x, lambda x: x >= 1, lambda x: x.relu(), lambda x: x.log(), lambda x: x.sigmoid(),
    lambda x: x.clamp(0, 1), lambda x: x.max(), lambda x: x.sort(), lambda x: x.sqrt(), lambda x: x @ x,
    lambda x: x.tanh(), lambda x: x.cumsum(0), lambda x: deepbox.nn.functional.linear(x, x[None]),
], ids=["lt", "ge", "relu", "log", "sigmoid", "clamp", "max", "sort", "sqrt", "matmul", "tanh", "cumsum", "linear"])
def test_ops_without_complex_support_refuse_it_clearly(call):
    x = deepbox.tensor([1 + 2j, 3 - 1j], requires_grad=True)
    with pytest.raises(TypeError, match="does not support complex tensors") as info:
        call(x)
    assert isinstance(info.value, RuntimeError)  # PyTorch raises RuntimeError / NotImplementedError for its own


# ----------------------------------------------------------------------------- gradients
LOSSES = [  # a real loss of complex inputs, written once for both libraries
    ("abs", lambda z, w: z.abs().sum()),
    ("angle", lambda z, w: (z.angle() * w.abs()).sum()),
    ("mul_abs", lambda z, w: (z * w).abs().sum()),
    ("div_real", lambda z, w: (z / w).real.sum() + (w / z).imag.mean()),
    ("conj_mul", lambda z, w: (z.conj() * w).imag.sum()),
    ("add_sub_scalar", lambda z, w: ((z + 2j) * (w - 0.5) * 1.5j).abs().sum()),
    ("view_as_real", lambda z, w: (lib_of(z).view_as_real(z * w) ** 2).sum()),
    ("movement", lambda z, w: (lib_of(z).cat([z.reshape(2, 3).t(), w.reshape(3, 2).flip(0)], 1)[1:]).abs().sum()),
    ("sum_mean", lambda z, w: (z.sum(0) * w.mean()).abs() + 0 * z.real.sum()),
    ("real_times_complex", lambda z, w: (z.real * w + z.imag).abs().sum()),
    ("polar_of_parts", lambda z, w: lib_of(z).polar(z.abs(), w.angle()).real.sum()),
    ("complex_of_parts", lambda z, w: (lib_of(z).complex(z.imag, w.real) * z).angle().sum()),
    ("exp", lambda z, w: (lib_of(z).exp(1j * w.real) * z.exp()).abs().sum() + (0.5 * z).exp().imag.sum()),
    ("pow", lambda z, w: (z ** 2 + w ** 0.5 + (0.5 - 1j) ** z + z ** w).abs().sum()),
    ("where", lambda z, w: lib_of(z).where(z.real > 0, z, w * 2).abs().sum()),
]
FD_LOSSES = LOSSES[:6] + LOSSES[-3:]


@pytest.mark.parametrize("name,loss", LOSSES, ids=[c[0] for c in LOSSES])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_gradient_matches_pytorch(name, loss, dtype):
    shape = (6,) if name != "sum_mean" else (2, 3)
    za, wa = crand(*shape, dtype=dtype), crand(*shape, dtype=dtype)
    dz, dw = deepbox.tensor(za, requires_grad=True), deepbox.tensor(wa, requires_grad=True)
    tz, tw = torch.tensor(za, requires_grad=True), torch.tensor(wa, requires_grad=True)
    d, t = loss(dz, dw), loss(tz, tw)
    d.sum().backward()
    t.sum().backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.complex64 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), **tol)
    for a, b in ((dz, tz), (dw, tw)):
        if b.grad is None:
            assert a.grad is None
            continue
        assert a.grad.dtype.name == np.dtype(dtype).name
        np.testing.assert_allclose(a.grad.numpy(), b.grad.resolve_conj().numpy(), **tol)


def numeric_grad(f, z, eps=1e-6):
    """dL/dx + i dL/dy by central differences, one element at a time (z a complex128 array)."""
    g = np.zeros_like(z)
    for k in range(z.size):
        for unit in (1, 1j):
            zp, zm = z.copy(), z.copy()
            zp.flat[k] += unit * eps
            zm.flat[k] -= unit * eps
            g.flat[k] += unit * (f(zp) - f(zm)) / (2 * eps)
    return g


@pytest.mark.parametrize("name,loss", FD_LOSSES, ids=[c[0] for c in FD_LOSSES])
def test_gradient_matches_central_differences(name, loss):
    za, wa = crand(5), crand(5)
    z = deepbox.tensor(za, requires_grad=True)
    loss(z, deepbox.tensor(wa)).sum().backward()
    num = numeric_grad(lambda v: float(loss(deepbox.tensor(v), deepbox.tensor(wa)).sum()), za)
    np.testing.assert_allclose(z.grad.numpy(), num, rtol=1e-6, atol=1e-7)


def test_a_real_leaf_gets_a_real_gradient_through_complex_ops():
    x = deepbox.tensor([0.3, -1.2, 2.0], dtype=deepbox.float64, requires_grad=True)
    t = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    for v in (x, t):
        (v * (2 - 1j) + 1j).abs().sum().backward()
    assert x.grad.dtype is deepbox.float64
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_gradient_descent_on_a_complex_parameter_descends():
    target = deepbox.tensor([1 - 2j, 0.5j])
    z = deepbox.zeros(2, dtype=deepbox.complex64, requires_grad=True)
    for _ in range(50):
        loss = ((z - target).abs() ** 2).sum()
        z.grad = None
        loss.backward()
        with deepbox.no_grad():
            z -= 0.1 * z.grad
    np.testing.assert_allclose(z.detach().numpy(), target.numpy(), atol=1e-4)

"""``deepbox.fft`` against ``torch.fft``: values and dtypes of every transform (lengths, dims, norms), gradients
of real losses of their outputs (against torch.autograd and central differences), frequencies, shifts, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
from tests.test_complex import numeric_grad

R = np.random.default_rng(7)


def signal(shape, complex_=False):
    x = R.standard_normal(shape)
    return x + 1j * R.standard_normal(shape) if complex_ else x


# (name, call(fft module, x), input shape, complex input)
CASES = [
    ("fft", lambda F, x: F.fft(x), (8,), True),
    ("fft_real_n_pad", lambda F, x: F.fft(x, n=11, norm="ortho"), (3, 7), False),
    ("fft_crop_dim0", lambda F, x: F.fft(x, n=3, dim=0, norm="forward"), (5, 4), True),
    ("ifft", lambda F, x: F.ifft(x, norm="ortho"), (2, 6), True),
    ("ifft_n", lambda F, x: F.ifft(x, n=9), (2, 6), True),
    ("fft2", lambda F, x: F.fft2(x), (2, 4, 5), True),
    ("ifft2_s", lambda F, x: F.ifft2(x, s=(3, 6), norm="forward"), (4, 5), True),
    ("fftn_all", lambda F, x: F.fftn(x), (3, 4, 2), True),
    ("fftn_s_only", lambda F, x: F.fftn(x, s=(5, 3)), (2, 4, 4), False),
    ("ifftn_dims", lambda F, x: F.ifftn(x, dim=(0, 2), norm="ortho"), (3, 4, 2), True),
    ("rfft", lambda F, x: F.rfft(x), (2, 8), False),
    ("rfft_odd_n", lambda F, x: F.rfft(x, n=7, norm="ortho"), (2, 8), False),
    ("rfft_dim0_pad", lambda F, x: F.rfft(x, n=10, dim=0, norm="forward"), (6, 3), False),
    ("irfft", lambda F, x: F.irfft(x), (2, 5), True),
    ("irfft_odd_n", lambda F, x: F.irfft(x, n=9, norm="ortho"), (2, 5), True),
    ("irfft_crop", lambda F, x: F.irfft(x, n=4, norm="forward"), (7,), True),
    ("irfft_real_input", lambda F, x: F.irfft(x, n=6), (4,), False),
    ("rfft2", lambda F, x: F.rfft2(x), (2, 4, 6), False),
    ("irfft2", lambda F, x: F.irfft2(x, norm="ortho"), (4, 3), True),
    ("irfft2_s", lambda F, x: F.irfft2(x, s=(5, 5)), (4, 3), True),
    ("rfftn", lambda F, x: F.rfftn(x, norm="forward"), (3, 4, 5), False),
    ("rfftn_dims", lambda F, x: F.rfftn(x, s=(4, 6), dim=(2, 0)), (3, 4, 5), False),
    ("irfftn", lambda F, x: F.irfftn(x), (3, 2, 4), True),
    ("irfftn_dims", lambda F, x: F.irfftn(x, s=(3, 7), dim=(1, 0), norm="ortho"), (4, 3, 2), True),
    ("hfft", lambda F, x: F.hfft(x), (2, 5), True),
    ("hfft_n_ortho", lambda F, x: F.hfft(x, n=7, norm="ortho"), (5,), True),
    ("ihfft", lambda F, x: F.ihfft(x), (2, 8), False),
    ("ihfft_n_forward", lambda F, x: F.ihfft(x, n=5, norm="forward"), (6,), False),
    ("hfft2", lambda F, x: F.hfft2(x), (3, 4), True),
    ("ihfftn", lambda F, x: F.ihfftn(x, norm="ortho"), (3, 4), False),
    ("fftshift", lambda F, x: F.fftshift(F.fft(x), dim=-1), (2, 5), True),
    ("ifftshift_all", lambda F, x: F.ifftshift(F.fft2(x)), (4, 5), False),
]


def run(lib, call, arr, requires_grad):
    x = lib.tensor(arr, requires_grad=requires_grad)
    return x, call(lib.fft, x)


def cotangent_loss(lib, out, cot):
    """A real loss whose gradient with respect to ``out`` is ``cot`` (as a real view for a complex output)."""
    if out.is_complex():
        return (lib.view_as_real(out.resolve_conj()) * lib.tensor(cot)).sum()
    return (out * lib.tensor(cot)).sum()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,call,shape,complex_", CASES, ids=[c[0] for c in CASES])
def test_value_dtype_and_gradient_match_pytorch(name, call, shape, complex_, dtype):
    arr = signal(shape, complex_)
    arr = arr.astype({"float64": np.complex128, "float32": np.complex64}[dtype] if complex_ else dtype)
    dx, d = run(deepbox, call, arr, True)
    tx, t = run(torch, call, arr, True)
    assert d.dtype.name == str(t.dtype).removeprefix("torch.") and tuple(d.shape) == tuple(t.shape)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d.detach().numpy(), t.detach().resolve_conj().numpy(), **tol)
    cot = R.standard_normal(tuple(t.shape) + ((2,) if t.is_complex() else ())).astype(dtype)
    cotangent_loss(deepbox, d, cot).backward()
    cotangent_loss(torch, t, cot).backward()
    assert dx.grad.dtype.name == str(tx.grad.dtype).removeprefix("torch.")
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.resolve_conj().numpy(), **tol)


@pytest.mark.parametrize("name,call,shape,complex_", CASES[::3], ids=[c[0] for c in CASES[::3]])
def test_gradient_matches_central_differences(name, call, shape, complex_):
    arr = signal(shape, complex_)
    out_shape = tuple(call(deepbox.fft, deepbox.tensor(arr)).shape)
    cot = R.standard_normal(out_shape)
    cot_c = cot * (1 - 0.5j) if complex_ or call(deepbox.fft, deepbox.tensor(arr)).is_complex() else cot

    def loss(v):  # a real loss: Re(sum(conj(cot) * out)) for a complex output
        out = call(deepbox.fft, v)
        return (out * cot_c.conj()).real.sum() if out.is_complex() else (out * cot).sum()

    x = deepbox.tensor(arr, requires_grad=True)
    loss(x).backward()
    if complex_:
        num = numeric_grad(lambda v: float(loss(deepbox.tensor(v))), arr.astype(np.complex128))
    else:
        num = numeric_grad(lambda v: float(loss(deepbox.tensor(v.real))), arr.astype(np.complex128)).real
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-7)


def test_power_spectrum_gradient_matches_central_differences():
    x = deepbox.tensor(R.standard_normal(9), requires_grad=True)
    (deepbox.fft.rfft(x, norm="ortho").abs() ** 2).sum().backward()
    num = numeric_grad(lambda v: float((deepbox.fft.rfft(deepbox.tensor(v.real), norm="ortho").abs() ** 2).sum()),
                       x.detach().numpy().astype(np.complex128)).real
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-7)
    assert deepbox.autograd.gradcheck(lambda v: deepbox.fft.irfft(deepbox.fft.rfft(v, n=12) * 2, n=10),
                                      [deepbox.tensor(R.standard_normal(8), requires_grad=True)])


def test_round_trips_and_integer_input():
    x = deepbox.tensor(R.standard_normal((3, 8)))
    np.testing.assert_allclose(deepbox.fft.irfft(deepbox.fft.rfft(x), n=8).numpy(), x.numpy(), atol=1e-6)
    np.testing.assert_allclose(deepbox.fft.ifft(deepbox.fft.fft(x)).real.numpy(), x.numpy(), atol=1e-6)
    d, t = deepbox.fft.fft(deepbox.arange(4)), torch.fft.fft(torch.arange(4))
    assert d.dtype is deepbox.complex64 and repr(d) == repr(t).replace("torch", "deepbox")


@pytest.mark.parametrize("call", [
    lambda F, lib: F.fftfreq(8), lambda F, lib: F.fftfreq(7, d=0.5), lambda F, lib: F.rfftfreq(9, 2.0),
    lambda F, lib: F.rfftfreq(8, dtype=lib.float64), lambda F, lib: F.fftshift(lib.arange(10)),
    lambda F, lib: F.ifftshift(lib.arange(12).reshape(3, 4)),
    lambda F, lib: F.fftshift(lib.arange(12).reshape(3, 4), 0),
    lambda F, lib: F.ifftshift(F.fftshift(lib.arange(7.0))),
], ids=["fftfreq", "fftfreq_d", "rfftfreq", "rfftfreq_dtype", "fftshift", "ifftshift_2d", "fftshift_dim", "odd"])
def test_frequencies_and_shifts_match_pytorch(call):
    d, t = call(deepbox.fft, deepbox), call(torch.fft, torch)
    assert d.dtype.name == str(t.dtype).removeprefix("torch.")
    np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-7)


def test_out_argument():
    o = deepbox.zeros(3, dtype=deepbox.complex64)
    r = deepbox.fft.rfft(deepbox.tensor([1.0, 0.0, -1.0, 0.0]), out=o)
    assert r is o and o.tolist() == [0j, 2 + 0j, 0j]


@pytest.mark.parametrize("call,error,match", [
    (lambda F, lib: F.fft(lib.ones(3), norm="bad"), RuntimeError, "Invalid normalization mode"),
    (lambda F, lib: F.fft(lib.ones(3), n=0), RuntimeError, r"Invalid number of data points \(0\)"),
    (lambda F, lib: F.irfft(lib.ones(1, dtype=lib.complex64)), RuntimeError, r"Invalid number of data points \(0\)"),
    (lambda F, lib: F.rfft(lib.ones(3, dtype=lib.complex64)), RuntimeError, "expects a real input tensor"),
    (lambda F, lib: F.fft(lib.ones(3, dtype=lib.float16)), RuntimeError, "Unsupported dtype Half"),
    (lambda F, lib: F.fftn(lib.ones(3, 3), s=(2, 2), dim=(0,)), RuntimeError, "must have the same length"),
    (lambda F, lib: F.fft(lib.ones(3), dim=1), IndexError, "Dimension out of range"),
    (lambda F, lib: F.fft2(lib.ones(3, 3), dim=(0, 0)), RuntimeError, "FFT dims must be unique"),
], ids=["norm", "n0", "irfft_n0", "rfft_complex", "half", "s_dim", "dim_range", "dims_unique"])
def test_bad_arguments_raise_as_pytorch(call, error, match):
    for F, lib in ((deepbox.fft, deepbox), (torch.fft, torch)):
        with pytest.raises(error, match=match):
            call(F, lib)


def test_the_namespace_has_torch_fft_functions():
    public = {n for n in dir(torch.fft) if not n.startswith("_") and callable(getattr(torch.fft, n))} - {"Tensor"}
    assert public <= set(deepbox.fft.__all__)
    assert hasattr(deepbox, "fft") and deepbox.fft.fft is not None

"""The op table (``deepbox/ops/__init__.py``): every declared op is where PyTorch has it, and nowhere else;
``out=`` works as PyTorch's or is refused by name; the rounding ops are Functions with PyTorch's gradients."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import deepbox
from deepbox.ops import TABLE
from tests.helpers import check_op


def _declared():
    for module, table in TABLE.items():
        for line in table.strip().splitlines():
            name, *places = line.split()
            yield module, name.partition("=")[0], places


@pytest.mark.parametrize("module,name,places", list(_declared()), ids=lambda v: v if isinstance(v, str) else "")
def test_declared_places_match_pytorch(module, name, places):
    assert ("deepbox" in places) == hasattr(torch, name), f"deepbox.{name}: torch.{name} exists: {hasattr(torch, name)}"
    assert ("deepbox" in places) == hasattr(deepbox, name)
    if "method" in places:
        assert hasattr(torch.Tensor, name), f"Tensor.{name} is declared but torch.Tensor has no {name}"
        assert hasattr(deepbox.Tensor, name)
    if "inplace" in places:
        assert hasattr(torch.Tensor, name + "_"), f"Tensor.{name}_ is declared but torch.Tensor has no {name}_"
        assert hasattr(deepbox.Tensor, name + "_")


def test_internals_are_not_public():
    for name in ("getitem", "setitem", "cast", "pad", "one_hot", "make"):
        assert not hasattr(deepbox, name), f"deepbox.{name} leaks an internal (torch has no torch.{name})"
    assert deepbox.nn.functional.pad is not None and deepbox.nn.functional.one_hot is not None


def test_missing_submodules_are_attribute_errors():
    assert hasattr(deepbox, "hub") is False
    assert hasattr(deepbox, "export") is False
    assert hasattr(deepbox, "fft") is True
    assert hasattr(deepbox, "linalg") is True


def test_vdot_is_a_method():
    x, y = np.arange(3.0), np.array([1.0, -2.0, 0.5])
    check_op(lambda a, b: a.vdot(b), x, y)


# ----------------------------------------------------------------------------- out=
OUT_CASES = [
    ("add", lambda lib, o, a, b: lib.add(a, b, out=o), 2),
    ("sub", lambda lib, o, a, b: lib.sub(a, b, alpha=2, out=o), 2),
    ("mul", lambda lib, o, a, b: lib.mul(a, b, out=o), 2),
    ("div", lambda lib, o, a, b: lib.div(a, b, out=o), 2),
    ("div_floor", lambda lib, o, a, b: lib.div(a, b, rounding_mode="floor", out=o), 2),
    ("matmul", lambda lib, o, a, b: lib.matmul(a, b.T, out=o), 2),
    ("mm", lambda lib, o, a, b: lib.mm(a, b.T, out=o), 2),
    ("bmm", lambda lib, o, a, b: lib.bmm(a[None], b.T[None], out=o), 2),
    ("sum", lambda lib, o, a: lib.sum(a, 1, out=o), 1),
    ("mean", lambda lib, o, a: lib.mean(a, 0, keepdim=True, out=o), 1),
    ("clamp", lambda lib, o, a: lib.clamp(a, -0.5, 0.5, out=o), 1),
    ("where", lambda lib, o, a, b: lib.where(a > 0, a, b, out=o), 2),
    ("cat", lambda lib, o, a, b: lib.cat([a, b], 1, out=o), 2),
    ("stack", lambda lib, o, a, b: lib.stack([a, b], out=o), 2),
    ("exp", lambda lib, o, a: lib.exp(a, out=o), 1),
    ("log", lambda lib, o, a: lib.log(a.abs() + 1, out=o), 1),
]


@pytest.mark.parametrize("name,fn,n", OUT_CASES, ids=[c[0] for c in OUT_CASES])
@pytest.mark.parametrize("out_shape", [(0,), (1,)], ids=["empty", "resized"])
def test_out_writes_into_the_given_tensor(name, fn, n, out_shape):
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(-2, 2, (3, 4)) for _ in range(n)]
    d_out, t_out = deepbox.zeros(*out_shape, dtype=deepbox.float64), torch.zeros(*out_shape, dtype=torch.float64)
    with pytest.warns(UserWarning, match="resized") if out_shape == (1,) else _no_warning():
        r = fn(deepbox, d_out, *[deepbox.tensor(a) for a in arrays])
    with pytest.warns(UserWarning, match="resized") if out_shape == (1,) else _no_warning():
        fn(torch, t_out, *[torch.tensor(a) for a in arrays])
    assert r is d_out
    np.testing.assert_allclose(d_out.numpy(), t_out.numpy(), rtol=1e-12)


class _no_warning:
    def __enter__(self):
        import warnings

        self._c = warnings.catch_warnings()
        self._c.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._c.__exit__(*exc)


@pytest.mark.parametrize("lib", [deepbox, torch], ids=["deepbox", "torch"])
def test_out_refuses_inputs_that_require_grad(lib):
    x = lib.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"out=\.\.\. arguments don't support automatic differentiation"):
        lib.add(x, 1.0, out=lib.zeros(3))


@pytest.mark.parametrize("lib", [deepbox, torch], ids=["deepbox", "torch"])
def test_out_refuses_a_narrower_dtype(lib):
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        lib.add(lib.ones(2), 1.5, out=lib.zeros(2, dtype=lib.long))


def test_out_into_a_wider_dtype_and_no_grad_mode():
    o = deepbox.zeros(2, dtype=deepbox.float64)
    assert deepbox.add(deepbox.ones(2), 1.5, out=o) is o and o.tolist() == [2.5, 2.5]
    x = deepbox.ones(2, requires_grad=True)
    with deepbox.no_grad():
        o = deepbox.zeros(2)
        deepbox.mul(x, 3.0, out=o)
    assert o.tolist() == [3.0, 3.0] and not o.requires_grad


def _public_functions_with_out():
    seen = set()
    for mod in (deepbox, deepbox.linalg, deepbox.nn.functional):
        for name in dir(mod):
            fn = getattr(mod, name)
            if name.startswith("_") or not inspect.isfunction(fn) or id(fn) in seen:
                continue
            seen.add(id(fn))
            try:
                params = inspect.signature(fn).parameters
            except (TypeError, ValueError):
                continue
            if "out" in params:
                yield f"{mod.__name__}.{name}", fn


def test_no_public_function_ignores_out():
    """Every public function that accepts ``out`` either uses it (``write_out``) or refuses it (``no_out``)."""
    for qualname, fn in _public_functions_with_out():
        src = inspect.getsource(fn)
        assert any(use in src for use in ("write_out(", "no_out(", "out=out")), \
            f"{qualname} accepts out= but neither writes into it, nor refuses it, nor passes it on"


@pytest.mark.parametrize("call", [
    lambda: deepbox.linalg.inv(deepbox.eye(2), out=deepbox.zeros(2, 2)),
    lambda: deepbox.linalg.det(deepbox.eye(2), out=deepbox.zeros(())),
], ids=["linalg.inv", "linalg.det"])
def test_unsupported_out_raises_naming_the_argument(call):
    with pytest.raises(NotImplementedError, match="'out'"):
        call()


# ----------------------------------------------------------------------------- rounding ops are Functions
R = np.random.default_rng(2)


@pytest.mark.parametrize("name,fn,inputs", [
    ("fmod", lambda x, y: x.fmod(y), [R.uniform(-5, 5, (3, 4)), R.uniform(0.5, 2, (4,)) * np.array([1, -1, 1, -1])]),
    ("fmod_scalar", lambda x: x.fmod(1.5), [R.uniform(-5, 5, (3, 4))]),
    ("div_floor", lambda x, y: x.div(y, rounding_mode="floor"), [R.uniform(-5, 5, (3, 4)), R.uniform(0.5, 2, (4,))]),
    ("div_trunc", lambda x, y: x.div(y, rounding_mode="trunc"), [R.uniform(-5, 5, (3, 4)), R.uniform(0.5, 2, (4,))]),
    ("round_decimals", lambda x: x.round(decimals=2) * x, [R.uniform(-5, 5, (3, 4))]),
    ("floor_divide_int", lambda x, y: x // y, [np.array([7, -7, 5]), np.array([2, 2, -3])]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_rounding_ops_have_pytorchs_gradients(name, fn, inputs):
    check_op(fn, *inputs)


def test_rounding_ops_are_in_the_graph():
    x = deepbox.tensor([1.5, -2.7], requires_grad=True)
    for y in (deepbox.fmod(x, 1.5), deepbox.div(x, 2.0, rounding_mode="floor"), deepbox.round(x, decimals=1)):
        assert y.requires_grad and y.grad_fn is not None

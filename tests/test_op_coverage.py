"""Every exported op has a parity case in ``tests/test_ops.py`` or a line on the short exemption list below.

"Exported op": every name the op table (``deepbox/ops/__init__.py``) binds as ``deepbox.<name>`` or
``Tensor.<name>``, and the operators bound next to it. A case covers an op when its lambda calls it
directly (calls that an op makes inside itself do not count): the test runs every case once in deepbox
with each op wrapped in a recorder.
"""
from __future__ import annotations

import contextlib

import numpy as np

import deepbox
from deepbox.ops import TABLE
from tests.test_ops import CASES

# ops without a parity case in tests/test_ops.py, and why
EXEMPT = {
    # results that are not tensors: Python bools and shapes, checked in tests/test_edges.py and test_tensor.py
    "allclose", "equal", "broadcast_shapes",
    # random or data-dependent output sizes, checked against torch in their own tests
    "unique", "bincount", "nonzero", "argwhere", "masked_select",
    # landed by the edge-cases work just before this table; checked against torch in tests/test_edges.py
    "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "logaddexp", "logaddexp2", "copysign",
    "arcsin", "arccos", "arcsinh", "arccosh", "arctanh",
    "bitwise_left_shift", "bitwise_right_shift", "cummax", "cummin", "logcumsumexp", "scatter_reduce",
    # linear algebra: tests/linalg/test_linalg.py checks each against torch.linalg
    "slogdet", "pinverse", "matrix_power", "cholesky", "qr", "svd", "cross",
}

# operators: the op each one runs (x + y runs add's Function)
OPERATORS = {"__add__": "add", "__radd__": "add", "__sub__": "sub", "__rsub__": "sub", "__mul__": "mul",
             "__rmul__": "mul", "__truediv__": "div", "__rtruediv__": "div", "__floordiv__": "floor_divide",
             "__rfloordiv__": "floor_divide", "__mod__": "remainder", "__rmod__": "remainder", "__pow__": "pow",
             "__rpow__": "pow", "__matmul__": "matmul", "__rmatmul__": "matmul", "__neg__": "neg", "__abs__": "abs",
             "__eq__": "eq", "__ne__": "ne", "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge",
             "__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor",
             "__invert__": "bitwise_not", "__getitem__": "getitem"}


def declared_ops():
    """{public name: the function it is bound to} for every op of the table."""
    ops = {}
    for module, table in TABLE.items():
        for line in table.strip().splitlines():
            name, *places = line.split()
            name, _, target = name.partition("=")
            if "deepbox" in places or "method" in places:
                ops[name] = getattr(module, target or name)
    return ops


@contextlib.contextmanager
def recording(ops):
    """Wrap each op (top level, Tensor method, operator) to record the ops a case's lambda calls itself."""
    called, depth = set(), [0]
    by_fn = {}
    for name, fn in ops.items():
        by_fn.setdefault(id(fn), set()).add(name)

    def wrap(original, names):
        def recorder(*args, **kwargs):
            if depth[0] == 0:
                called.update(names)
            depth[0] += 1
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1
        return recorder

    saved = []
    for owner in (deepbox, deepbox.Tensor):
        for name, fn in ops.items():
            current = owner.__dict__.get(name) if owner is deepbox.Tensor else getattr(owner, name, None)
            if current is None or isinstance(current, property):
                continue
            saved.append((owner, name, current))
            setattr(owner, name, wrap(current, by_fn.get(id(fn), {name})))
    for dunder, name in OPERATORS.items():
        current = deepbox.Tensor.__dict__[dunder]
        saved.append((deepbox.Tensor, dunder, current))
        setattr(deepbox.Tensor, dunder, wrap(current, by_fn.get(id(ops.get(name)), {name})))
    try:
        yield called
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def covered_ops():
    ops = declared_ops()
    with recording(ops) as called:
        for _, fn, inputs in CASES:
            args = [deepbox.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x
                    for x in inputs]
            fn(*args)
    return called


def test_every_exported_op_has_a_parity_case_or_an_exemption():
    ops = declared_ops()
    missing = sorted(set(ops) - covered_ops() - EXEMPT)
    assert not missing, (f"ops without a parity case in tests/test_ops.py: {missing}; add a one-line case to CASES "
                         "(or, with a reason, a line to EXEMPT in this file)")


def test_the_exemption_list_is_not_stale():
    ops = declared_ops()
    stale = sorted(EXEMPT - set(ops))
    assert not stale, f"EXEMPT names ops that are not declared any more: {stale}"
    now_covered = sorted(EXEMPT & covered_ops())
    assert not now_covered, f"these exempt ops have a parity case now: remove them from EXEMPT: {now_covered}"


def test_the_recorder_sees_direct_calls_only():
    ops = declared_ops()
    with recording(ops) as called:
        x = deepbox.ones(3)
        deepbox.lerp(x, x, 0.5)  # lerp calls add, mul and sub inside
    assert called == {"lerp"}

"""Swap the student's implementation in for deepbox's own op, through the public entry points only.

A layer exercise's ``forward``/``backward`` pair becomes a ``deepbox.autograd.Function`` (the
student's cache rides on ``ctx``), and ``use`` points the public functional wrapper
(``deepbox.nn.functional.NAME``) and, where a module does not go through it, the module's
``forward`` at the student's version for the length of a ``with`` block. Nothing inside
``deepbox/ops`` or the kernels is touched, so the swap keeps working as those are reorganised.
"""
from __future__ import annotations

import contextlib

from deepbox.exercises.checking import to_tuple

__all__ = ["layer_function", "patch_functional", "patched", "use", "implemented_parts"]


def layer_function(student, layer, forward: str | None = None, backward: str | None = None):
    """A function of Tensors that runs the student's forward and backward as one autograd Function.

    Positional arguments are the layer's inputs in the forward's order (Tensors or arrays);
    keyword arguments are passed to the forward as they are. Outputs are cast to the first
    input's dtype, so a float64 habit of the student's code does not change the model's dtype.
    """
    from deepbox.autograd.function import Function

    fwd = getattr(student, forward or layer.forward)
    bwd = getattr(student, backward or layer.backward)
    n_out = len(layer.outputs)

    class StudentOp(Function):
        @staticmethod
        def forward(ctx, *arrays, _names=(), **params):
            res = fwd(*arrays, **params)
            outs, cache = res[:n_out], res[n_out]
            ctx.cache = cache
            ctx.names = _names
            dtype = arrays[0].dtype
            outs = tuple(o.astype(dtype, copy=False) for o in outs)
            return outs[0] if n_out == 1 else outs

        @staticmethod
        def backward(ctx, *grads):
            got = to_tuple(bwd(*grads, ctx.cache))
            by_name = dict(zip(layer.grads, got))
            return tuple(by_name.get(n) for n in ctx.names)

    StudentOp.__name__ = f"Student_{layer.forward}"
    names = tuple(layer_inputs(layer))

    def apply(*inputs, **params):
        if len(inputs) != len(names):
            raise TypeError(f"the student's {layer.forward} takes {len(names)} inputs ({', '.join(names)}), "
                            f"got {len(inputs)}")
        return StudentOp.apply(*inputs, _names=names, **params)

    return apply


def layer_inputs(layer) -> list:
    """The names of a layer's forward inputs, in order (the checks' first case holds them all)."""
    return list(layer.inputs) if getattr(layer, "inputs", None) else list(layer.grads)


def patch_functional(name: str, replacement) -> list:
    import deepbox.nn.functional as F

    return [(F, name, replacement)]


def implemented_parts(ex, report) -> list:
    """The parts whose checks passed, in order."""
    ok = {p.name for p in report.parts if p.passed}
    return [p for p in ex.parts if p.title in ok]


@contextlib.contextmanager
def patched(patches: list):
    """Set each ``owner.attribute`` to its replacement; restore every one on exit."""
    saved = []
    try:
        for owner, attr, new in patches:
            saved.append((owner, attr, owner.__dict__.get(attr, _MISSING) if isinstance(owner, type)
                          else getattr(owner, attr, _MISSING)))
            setattr(owner, attr, new)
        yield
    finally:
        for owner, attr, old in reversed(saved):
            if old is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)


_MISSING = object()


@contextlib.contextmanager
def use(ex, source, part: str | None = None):
    """See ``deepbox.exercises.use``."""
    from deepbox.exercises.checking import load_student

    if ex.swap is None:
        raise ValueError(f"exercise {ex.name!r} has no deepbox op to swap in (it is checked, not swapped)")
    student = load_student(source, ex.name)
    title = _pick_part(ex, student, part)
    patches = ex.swap(student, title)
    with patched(patches):
        yield student


def _pick_part(ex, student, part: str | None) -> str:
    swappable = [p for p in ex.parts if p.swap_ok]
    if part is not None:
        for p in swappable:
            if part.lower() in p.title.lower():
                return p.title
        raise ValueError(f"exercise {ex.name!r} has no part {part!r}; its parts: "
                         + ", ".join(p.title for p in swappable))
    for p in reversed(swappable):  # the last part whose functions exist and are not the template's
        if all(_implemented(getattr(student, f, None)) for f in p.functions):
            return p.title
    return swappable[-1].title


def _implemented(fn) -> bool:
    """Whether ``fn`` is more than the template's ``raise NotImplementedError`` (read from its code)."""
    if fn is None:
        return False
    import dis

    try:
        names = {i.argval for i in dis.get_instructions(fn)}
    except TypeError:
        return True
    return "NotImplementedError" not in names

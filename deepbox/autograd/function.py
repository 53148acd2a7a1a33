"""``Function``: one differentiable operation, its forward and backward side by side.

A subclass writes two static methods that work on raw arrays::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * a

``Mul.apply(x, y)`` takes Tensors (or plain Python numbers / arrays, which are
treated as constants), runs ``forward`` on their arrays and, when a gradient is
needed, links the result into the graph. ``backward`` returns one gradient per
positional input (``None`` where none is needed); the engine sums each back to
its input's shape (un-broadcasting) and casts it to its input's dtype, so ops
never do that themselves. Arrays that backward needs go through
``ctx.save_for_backward``: those are released after backward and, when they
are an input's or the output's own array, guarded by the version counter
against later in-place changes. Other attributes (shapes, flags) go on ``ctx``.

A forward that returns a tuple makes a multi-output function; its backward then
receives one gradient per output (zeros for outputs that got none).
"""
from __future__ import annotations

import itertools

from deepbox import backend
from deepbox.autograd.grad_mode import state as _grad_state
from deepbox.tensor import Tensor, _make

_ndarray = backend.ndarray
_asarray = backend.xp.asarray
_new = object.__new__
_sequence = itertools.count()  # creation order: a topological order of the graph


class Function:
    # Whether forward and backward are right for complex inputs (backward returns the conjugate Wirtinger
    # gradient, PyTorch's convention). deepbox's own ops opt in one by one; the others refuse complex tensors
    # rather than return a wrong value or gradient. A user's own Function is trusted, as PyTorch trusts it.
    supports_complex = False
    # class-level defaults: instances set these only when needed
    _hooks = None        # {output index: [hook, ...]} registered on non-leaf outputs
    _retained = None     # {output index: weakref to the output tensor}  (retain_grad)
    _n_out = 1
    saved_tensors = ()
    _saved_versions = ()
    _seq = 0

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays

    def mark_non_differentiable(self, *args) -> None:  # accepted for PyTorch compatibility
        pass

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "supports_complex" not in cls.__dict__ and not cls.__module__.startswith("deepbox."):
            cls.supports_complex = True

    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()} object>"

    @property
    def next_functions(self):
        """The nodes feeding this one, as ``(node, output index)`` pairs (``None`` for constants)."""
        out = []
        for p, i in zip(self.parents, self.parent_idx):
            if p is None:
                out.append((None, 0))
            elif isinstance(p, Tensor):
                out.append((AccumulateGrad(p), 0))
            else:
                out.append((p, i))
        return tuple(out)

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the inputs' arrays; when an input needs a gradient, link the result into the graph.

        The input loop stays inline (not a helper) on purpose: the per-op cost on tiny tensors is Python
        dispatch, and a call per op here measured about 1 us of the tiny graph's 45 us (``bench_overhead``).
        """
        ctx = _new(cls)
        arrays = []
        needs = []
        any_grad = False
        record = _grad_state.enabled
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a._data)
                if a._data.dtype.kind == "c" and not cls.supports_complex:
                    raise ComplexNotSupportedError(cls)
                if record and a.requires_grad:
                    needs.append(True)
                    any_grad = True
                    continue
            else:
                arrays.append(a)
            needs.append(False)
        ctx.needs_input_grad = needs
        out = cls.forward(ctx, *arrays, **kwargs)
        if not any_grad:
            return _constant(out)
        ctx._seq = next(_sequence)
        # an edge per input: the leaf tensor, or the node and output that made it (None: no gradient)
        parents = []
        idxs = []
        for a, n in zip(args, needs):
            if n:
                c = a._ctx
                parents.append(a if c is None else c)
                idxs.append(a._out_idx)
            else:
                parents.append(None)
                idxs.append(0)
        ctx.parents = parents
        ctx.parent_idx = idxs
        result, outs = _outputs(ctx, out)
        if ctx.saved_tensors:
            _guard_saved(ctx, args, outs)
        if cls._is_view:
            _share_version(args[0], outs[0])
        return result

    _is_view = False


class ComplexNotSupportedError(TypeError, NotImplementedError):
    """An op that has no complex version was given a complex tensor. A TypeError, and a NotImplementedError
    (so a RuntimeError) as PyTorch raises for an op without a complex kernel."""

    def __init__(self, fn):
        op = fn if isinstance(fn, str) else fn.__name__.removesuffix("Fn").removesuffix("Function")
        super().__init__(f"{op} does not support complex tensors in deepbox (its value or gradient would be "
                         "wrong); complex tensors work with + - * /, **, exp, abs, angle, real, imag, conj, "
                         "where, sum, mean, reshaping and indexing, and deepbox.fft")


class AccumulateGrad:
    """The graph node of a leaf tensor, as ``grad_fn.next_functions`` shows it."""

    def __init__(self, variable):
        self.variable = variable
        self.next_functions = ()

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad object>"

    def __eq__(self, other):
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self):
        return id(self.variable)


# ----------------------------------------------------------------------------- the steps of Function.apply
def _constant(out):
    """The result of a call that needs no graph: plain leaf tensors (the fast path of inference)."""
    if type(out) is tuple:
        return tuple(_make(_asarray(o)) for o in out)
    return _make(out if type(out) is _ndarray else _asarray(out))


def _outputs(ctx, out):
    """The output tensor(s) of a recorded call, each pointing at ``ctx``; returns (result, tuple of outputs)."""
    if type(out) is tuple:
        ctx._n_out = len(out)
        ctx.output_meta = [(o.shape, o.dtype) for o in out]
        outs = []
        for i, o in enumerate(out):
            t = _make(_asarray(o))
            t.requires_grad = True
            t._ctx = ctx
            t._out_idx = i
            outs.append(t)
        return tuple(outs), outs
    if type(out) is not _ndarray:
        out = _asarray(out)
    result = _make(out)
    result.requires_grad = True
    result._ctx = ctx
    ctx.output_meta = ((out.shape, out.dtype),)
    return result, (result,)


def _guard_saved(ctx, args, outs):
    """Record the version of every saved array that is an input's or an output's own array, so that backward
    can refuse one changed in place since (the engine's ``_check_saved``). Other saved arrays are private."""
    guards = []
    for s in ctx.saved_tensors:
        if s is None or type(s) is not _ndarray:
            continue
        for a in args:
            if isinstance(a, Tensor) and a._data is s:
                guards.append((a._version, a._version[0], a._data.shape, a._data.dtype))
                break
        else:
            for t in outs:
                if t._data is s:
                    guards.append((t._version, t._version[0], None, None))
                    break
    if guards:
        ctx._saved_versions = guards


def _share_version(inp, out):
    """A view shares its base's version counter, so an in-place change through either is seen by both."""
    if isinstance(inp, Tensor):
        owner = inp._data if inp._data.base is None else inp._data.base
        if out._data.base is owner:
            out._version = inp._version

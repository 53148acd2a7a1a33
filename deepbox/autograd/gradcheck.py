"""``gradcheck``: compare analytic gradients with central finite differences, in float64.

For a random cotangent ``v`` of the output, backward gives ``J^T v``; central
differences give each column of the Jacobian-vector products ``v . dF/dx_i``.
Usable without PyTorch, so students can check a Function they wrote.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.engine import grad as _grad
from deepbox.autograd.grad_mode import no_grad
from deepbox.tensor import Tensor, _make

xp = backend.xp


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
              seed: int = 0, **_ignored) -> bool:
    """Check ``fn``'s gradients w.r.t. every input that requires grad.

    Args:
        fn: a function of tensors returning a tensor (or a tuple whose tensors are all checked).
        inputs: a tensor or tuple of tensors; those with ``requires_grad`` are checked. Use float64.
        eps, atol, rtol: finite-difference step and tolerances.
    Returns ``True``, or raises ``GradcheckError`` (``raise_exception=False``: returns ``False``).
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck expects at least one input tensor with requires_grad=True")
    for i in diff:
        if inputs[i]._data.dtype != xp.float64:
            import warnings

            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}, not float64; finite differences will be "
                          "inaccurate", stacklevel=2)

    def outputs_of(args):
        out = fn(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o for o in outs if isinstance(o, Tensor) and o._data.dtype.kind == "f"]

    rng = xp.random.default_rng(seed)
    outs = outputs_of(inputs)
    vs = [rng.standard_normal(o._data.shape) for o in outs]
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    if live:
        analytic = _grad([o for o, _ in live], [inputs[i] for i in diff],
                                 grad_outputs=[_make(v.astype(o._data.dtype)) for o, v in live], allow_unused=True)
    else:
        analytic = [None] * len(diff)

    def scalar(args):
        with no_grad():
            return sum(float((o._data.astype(xp.float64) * v).sum()) for o, v in zip(outputs_of(args), vs))

    ok = True
    msgs = []
    for k, i in enumerate(diff):
        x = inputs[i]
        base = x._data
        numeric = xp.zeros(base.shape, xp.float64)
        flat = numeric.reshape(-1)
        for j in range(base.size):
            saved = base.reshape(-1)[j] if base.flags.c_contiguous else None
            for sign in (1.0, -1.0):
                pert = base.copy()
                pert.reshape(-1)[j] += sign * eps
                args = list(inputs)
                t = _make(pert)
                args[i] = t
                val = scalar(args)
                flat[j] += sign * val
            flat[j] /= 2 * eps
            del saved
        a = analytic[k]
        a = xp.zeros(base.shape) if a is None else a._data.astype(xp.float64)
        if not xp.allclose(a, numeric, atol=atol, rtol=rtol):
            ok = False
            err = xp.abs(a - numeric)
            worst = int(err.argmax())
            msgs.append(
                f"Jacobian mismatch for input {i} (shape {tuple(base.shape)}): largest difference {err.max():.3e} at "
                f"flat index {worst}: analytic {a.reshape(-1)[worst]:.6e} vs numerical {numeric.reshape(-1)[worst]:.6e}"
            )
    if not ok:
        if raise_exception:
            raise GradcheckError("\n".join(msgs))
        return False
    return True


def gradgradcheck(*args, **kwargs):
    raise NotImplementedError("deepbox computes first-order gradients only; gradgradcheck is not available")


class GradcheckError(RuntimeError):
    pass

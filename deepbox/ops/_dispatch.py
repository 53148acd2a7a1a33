"""The registry of fast twins and the one switch that turns them on or off: how a wrapper picks its Function.

A public wrapper in ``deepbox/ops/`` (or ``nn.functional``, ``optim``) picks one Function per call:

    fn = choose(Conv2dFn, input, weight)      # Conv2dFn, or its fast twin when that is on and takes the call
    return fn.apply(...)

The fast twins live in ``deepbox/kernels/`` (a layer above this one) and register themselves here with
``@fast_twin(ReferenceFn)`` when that package is imported (``import deepbox`` does it); this module knows
nothing of how they are fast. ``deepbox.kernels`` re-exports ``choose``, ``fast_twin``, ``twin_of`` and
switches the flag below (``kernels.compiled(False)``: every wrapper picks its reference Function).
"""
from __future__ import annotations

__all__ = ["choose", "fast_twin", "twin_of"]

# the fast layer's on/off switch, read by choose() on every call; deepbox.kernels.switch sets it
_switch = {"enabled": True}

_TWINS: dict = {}
_BY_NAME: dict = {}     # twins registered by the reference's "module:qualname", resolved on first use


def fast_twin(reference):
    """Class (or function) decorator: register the decorated fast path as ``reference``'s twin.

    ``reference`` is the reference object, or its ``"module:qualname"`` where importing it from the fast
    layer would load a package of a higher layer (``"deepbox.optim.adam:adam_update"``).
    """
    def register(fast):
        if isinstance(reference, str):
            _BY_NAME[reference] = fast
        else:
            _TWINS[reference] = fast
            fast.reference = reference
        return fast
    return register


def twin_of(reference):
    """The fast twin registered for ``reference``, or None."""
    fast = _TWINS.get(reference)
    if fast is None and _BY_NAME:
        fast = _BY_NAME.pop(f"{reference.__module__}:{reference.__qualname__}", None)
        if fast is not None:
            _TWINS[reference] = fast
            fast.reference = reference
    return fast


def choose(reference, *args, **params):
    """``reference``'s fast twin when the fast layer is on and the twin ``accepts`` this call, else ``reference``.

    ``args``/``params`` are what the twin's ``accepts`` checks (typically the input arrays: float32/64
    for the compiled loops, a layout the loop handles). This runs on every op call (every ``+``).
    """
    if _switch["enabled"]:
        fast = _TWINS.get(reference)
        if fast is None and _BY_NAME:
            fast = twin_of(reference)
        if fast is not None and fast.accepts(*args, **params):
            return fast
    return reference

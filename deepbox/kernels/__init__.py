"""The fast-kernel layer: the fast twin of a reference op, each as its own ``Function``.

``deepbox/ops/`` holds the reference Functions, plain NumPy with forward and backward side by side:
what a reader opens to learn how an op computes. This package holds, one file per family, a fast
twin for the ops that a profile showed to dominate training: compiled (numba) loops with their
NumPy twins, split over a thread pool, with large temporaries reused from one workspace.

* ``switch``: numba loading and the on/off switch (``compiled``, ``DEEPBOX_NUMBA=0``);
* ``threads``: the thread pool, work splitting, BLAS's thread count;
* ``workspace``: the one pool of reusable large buffers;
* ``_numba_kernels``, ``_numba_elementwise``: the compiled loops, loaded only through ``switch``.

A fast Function names its reference with ``@fast_twin(ReferenceFn)`` and says which calls it
takes in ``accepts(*arrays, **params)``; a public wrapper then picks one Function per call with
``kernels.choose(ReferenceFn, *arrays, **params)``. A Function records what it did in forward and
never reads the switch again in backward. ``deepbox/__init__.py`` imports ``kernels.families``,
which imports every family so that each twin is registered. Every fast Function is tested
against its reference twin and PyTorch (``tests/conv``, ``tests/nn/test_*kernels.py``,
``tests/test_kernels.py``).
"""
from __future__ import annotations

from deepbox.kernels import switch, threads
from deepbox.kernels.switch import active, available, compiled, enabled, kernels, kernels_for, set_enabled
from deepbox.kernels.threads import num_threads, set_num_threads

__all__ = ["choose", "fast_twin", "twin_of", "available", "enabled", "active", "set_enabled", "compiled", "kernels",
           "kernels_for", "num_threads", "set_num_threads", "switch", "threads"]


_TWINS: dict = {}
_BY_NAME: dict = {}     # twins registered by the reference's "module:qualname", resolved on first use


def fast_twin(reference):
    """Class (or function) decorator: register the decorated fast path as ``reference``'s twin.

    ``reference`` is the reference object, or its ``"module:qualname"`` where importing it here
    would load a package that ``import deepbox`` otherwise leaves for later (``deepbox.optim``).
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
    for the compiled loops, a layout the loop handles).
    """
    if switch._state["enabled"]:
        fast = _TWINS.get(reference)
        if fast is None and _BY_NAME:
            fast = twin_of(reference)
        if fast is not None and fast.accepts(*args, **params):
            return fast
    return reference

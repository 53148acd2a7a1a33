"""The fast-kernel layer: the fast twin of a reference op, each as its own ``Function``.

``deepbox/ops/`` holds the reference Functions, plain NumPy with forward and backward side by side:
what a reader opens to learn how an op computes. This package holds, one file per family, a fast
twin for the ops that a profile showed to dominate training: compiled (numba) loops with their
NumPy twins, split over a thread pool, with large temporaries reused from one workspace.

* ``switch``: numba loading and the on/off switch (``compiled``, ``DEEPBOX_NUMBA=0``);
* ``threads``: the thread pool, work splitting, BLAS's thread count;
* ``workspace``: the one pool of reusable large buffers;
* ``_numba_kernels``, ``_numba_elementwise``: the compiled loops, loaded only through ``switch``.

A public wrapper picks one Function per call with ``choose(ReferenceFn, KernelFn, *conditions)``;
a Function records what it did in forward and never reads the switch again in backward. Every fast
Function is tested against its reference twin and PyTorch (``tests/conv``, ``tests/nn/test_*kernels.py``,
``tests/test_kernels.py``).
"""
from __future__ import annotations

from deepbox.kernels import switch, threads
from deepbox.kernels.switch import active, available, compiled, enabled, kernels, kernels_for, set_enabled
from deepbox.kernels.threads import num_threads, set_num_threads

__all__ = ["choose", "available", "enabled", "active", "set_enabled", "compiled", "kernels", "kernels_for",
           "num_threads", "set_num_threads", "switch", "threads"]


def choose(reference, fast, *conditions):
    """``fast`` when the fast layer is switched on and every condition holds, else ``reference``.

    The conditions are the fast Function's own requirements, evaluated by the caller (for example
    ``kernels_for(x) is not None``: numba loaded and a float32/64 input).
    """
    if switch._state["enabled"]:
        for c in conditions:
            if not c:
                return reference
        return fast
    return reference

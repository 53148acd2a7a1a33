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
``choose(ReferenceFn, *arrays, **params)``. The registry and the on/off flag that ``choose`` reads live
below this layer, in ``deepbox/ops/_dispatch.py`` (so the reference wrappers need not import this package);
they are re-exported here. A Function records what it did in forward and
never reads the switch again in backward. ``deepbox/__init__.py`` imports ``kernels.families``,
which imports every family so that each twin is registered. Every fast Function is tested
against its reference twin and PyTorch (``tests/conv``, ``tests/nn/test_*kernels.py``,
``tests/test_kernels.py``).
"""
from __future__ import annotations

from deepbox.kernels import switch, threads
from deepbox.kernels.switch import active, available, compiled, enabled, kernels, kernels_for, set_enabled
from deepbox.kernels.threads import num_threads, set_num_threads
from deepbox.ops._dispatch import choose, fast_twin, twin_of

__all__ = ["choose", "fast_twin", "twin_of", "available", "enabled", "active", "set_enabled", "compiled", "kernels",
           "kernels_for", "num_threads", "set_num_threads", "switch", "threads"]


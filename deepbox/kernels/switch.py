"""The on/off switch of the fast-kernel layer and the loading of its compiled (numba) loops.

Two switches, read only when a public wrapper picks its Function (``choose``, from ``deepbox/ops/_dispatch.py``,
which holds the on/off flag that this module sets):

* ``compiled(flag)`` / ``set_enabled(flag)``: the fast layer on or off for the process. Off, every op
  runs its reference Function from ``deepbox/ops/`` (plain NumPy), which is what the tests compare the
  fast Functions with.
* ``DEEPBOX_NUMBA=0`` in the environment: numba is never imported; the fast Functions that need
  compiled loops are then not chosen, and those that only split work over threads still are.

``kernels()`` is the namespace of compiled functions (every jitted function of the ``_numba_*``
modules), ``kernels_for(*arrays)`` the same only when every array is float32 or float64.

    >>> from deepbox import kernels
    >>> kernels.available()          # numba importable and not switched off
    True
    >>> import deepbox
    >>> model, x = deepbox.nn.Conv2d(1, 4, 3), deepbox.randn(2, 1, 8, 8)
    >>> with kernels.compiled(False):
    ...     out = model(x)           # the reference (NumPy) Functions
"""
from __future__ import annotations

import contextlib
import os
import threading

from deepbox.ops._dispatch import _switch

__all__ = ["available", "enabled", "active", "set_enabled", "compiled", "kernels", "kernels_for"]

# numba itself loads on first use unless DEEPBOX_NUMBA=0; the fast layer's on/off flag is _switch["enabled"]
_state = {"module": None, "tried": False}
_lock = threading.Lock()


# the modules of compiled kernels; their public functions form one namespace
_KERNEL_MODULES = ("deepbox.kernels._numba_kernels", "deepbox.kernels._numba_elementwise")


def _load():
    """Import the compiled kernels once; None when numba is missing or broken."""
    if _state["tried"]:
        return _state["module"]
    if os.environ.get("DEEPBOX_NUMBA", "1") == "0":
        _state["tried"] = True
        return None
    if not _state["tried"]:
        with _lock:
            if not _state["tried"]:
                try:
                    import importlib
                    import types

                    ns = types.SimpleNamespace()
                    for name in _KERNEL_MODULES:
                        mod = importlib.import_module(name)
                        for attr, obj in vars(mod).items():
                            if not attr.startswith("_") and callable(obj) and hasattr(obj, "py_func"):
                                setattr(ns, attr, obj)
                    _state["module"] = ns
                except ImportError:
                    _state["module"] = None
                except Exception as e:  # a numba that imports but cannot compile here: say so, use NumPy
                    import warnings

                    warnings.warn(f"deepbox: compiled kernels unavailable ({type(e).__name__}: {e}); "
                                  f"using the NumPy path", RuntimeWarning, stacklevel=2)
                    _state["module"] = None
                _state["tried"] = True
    return _state["module"]


def available() -> bool:
    """True when numba is importable and ``DEEPBOX_NUMBA`` is not ``0``."""
    return os.environ.get("DEEPBOX_NUMBA", "1") != "0" and _load() is not None


def enabled() -> bool:
    """True when the ops use the compiled kernels now."""
    return _switch["enabled"] and _load() is not None


def active() -> bool:
    """True when the fast layer is switched on (``compiled(True)``), with or without numba."""
    return _switch["enabled"]


def set_enabled(flag: bool) -> None:
    """Switch the fast layer on or off for the whole process (off: the reference Functions run)."""
    _switch["enabled"] = bool(flag)


@contextlib.contextmanager
def compiled(flag: bool = True):
    """Run a block with the fast layer switched on or off; restores the previous setting."""
    old = _switch["enabled"]
    _switch["enabled"] = bool(flag)
    try:
        yield
    finally:
        _switch["enabled"] = old


def kernels():
    """The compiled-kernel module when enabled and available, else None (use the NumPy path)."""
    return _load() if _switch["enabled"] else None


def kernels_for(*arrays):
    """The kernel module when enabled and every array (or tensor) is float32 or float64, else None.

    This runs on every op call: the dtype test reads one character (``np.dtype.char``).
    """
    k = _state["module"] if _state["tried"] and _switch["enabled"] else kernels()
    if k is not None:
        for a in arrays:
            dt = a.dtype
            if getattr(dt, "char", None) is None:
                dt = dt.np          # a deepbox tensor's dtype wraps NumPy's
            if dt.char not in "fd":
                return None
    return k



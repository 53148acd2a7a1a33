"""Optional compiled kernels, and the thread pool that runs them and the convolutions on every core.

NumPy runs each elementwise pass, copy and reduction on one core, while BLAS and
PyTorch use them all; and loops over few channels (LeNet's 6 and 16) are too short
for NumPy's per-call cost. When numba is installed (``pip install deepbox[fast]``)
the loops that a profile showed to dominate run compiled instead: max pooling and
batch norm (``deepbox/ops/_numba_kernels.py``), ReLU, GELU, layer norm, attention's
softmax, the LSTM cell, adds and Adam (``deepbox/ops/_numba_elementwise.py``), each
call split into one contiguous chunk per thread (``parallel``). The kernels release
the GIL, so a plain thread pool runs the chunks in parallel; there is no numba
threading layer to conflict with BLAS's threads, with ``fork`` in DataLoader
workers, or with user threads. Convolutions split their im2col + GEMM chunks over
the same pool with BLAS held at one thread (``parallel_gemms``, ``blas_single``).

Every compiled kernel has a NumPy twin that gives the same values; tests run both
(``deepbox.ops.accel.compiled(False)`` switches the kernels off). Set
``DEEPBOX_NUMBA=0`` in the environment to never load numba.

    >>> from deepbox.ops import accel
    >>> accel.available()          # numba importable and not switched off
    True
    >>> with accel.compiled(False):
    ...     out = model(x)         # the NumPy path
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["available", "enabled", "set_enabled", "compiled", "kernels", "kernels_for", "num_threads",
           "set_num_threads", "parallel", "parallel_gemms", "blas_single", "blas_multi"]

_state = {"enabled": os.environ.get("DEEPBOX_NUMBA", "1") != "0", "module": None, "tried": False}
_lock = threading.Lock()


# the modules of compiled kernels; their public functions form one namespace
_KERNEL_MODULES = ("deepbox.ops._numba_kernels", "deepbox.ops._numba_elementwise")


def _load():
    """Import the compiled kernels once; None when numba is missing or broken."""
    if _state["tried"]:
        return _state["module"]
    if os.environ.get("DEEPBOX_NUMBA", "1") == "0":
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
    return _state["enabled"] and _load() is not None


def set_enabled(flag: bool) -> None:
    """Switch the compiled kernels on or off for the whole process (no effect without numba)."""
    _state["enabled"] = bool(flag)


@contextlib.contextmanager
def compiled(flag: bool = True):
    """Run a block with the compiled kernels switched on or off; restores the previous setting."""
    old = _state["enabled"]
    _state["enabled"] = bool(flag)
    try:
        yield
    finally:
        _state["enabled"] = old


def kernels():
    """The compiled-kernel module when enabled and available, else None (use the NumPy path)."""
    return _load() if _state["enabled"] else None


def kernels_for(*arrays):
    """The kernel module when enabled and every array (or tensor) is float32 or float64, else None.

    This runs on every op call: the dtype test reads one character (``np.dtype.char``).
    """
    k = _state["module"] if _state["tried"] and _state["enabled"] else kernels()
    if k is not None:
        for a in arrays:
            dt = a.dtype
            if getattr(dt, "char", None) is None:
                dt = dt.np          # a deepbox tensor's dtype wraps NumPy's
            if dt.char not in "fd":
                return None
    return k


# ----------------------------------------------------------------------------- threads

def _default_threads() -> int:
    for var in ("DEEPBOX_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_threads = {"n": _default_threads(), "pool": None, "pid": None}


def num_threads() -> int:
    """Threads that a split kernel call uses (the calling thread included)."""
    return _threads["n"]


def set_num_threads(n: int) -> None:
    """Threads for split calls (``deepbox.set_num_threads`` sets this and BLAS's together)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"the number of threads must be an int, got {n!r} ({type(n).__name__})")
    if n < 1:
        raise ValueError(f"the number of threads must be positive, got {n}")
    with _lock:
        _threads["n"] = n
        if _threads["pool"] is not None:
            _threads["pool"].shutdown(wait=False)
        _threads["pool"] = None


def _pool():
    # a forked child (a DataLoader worker) inherits the pool object but not its threads
    if _threads["pool"] is None or _threads["pid"] != os.getpid():
        with _lock:
            if _threads["pool"] is None or _threads["pid"] != os.getpid():
                _threads["pool"] = ThreadPoolExecutor(max_workers=_threads["n"] - 1,
                                                      thread_name_prefix="deepbox-kernel")
                _threads["pid"] = os.getpid()
    return _threads["pool"]


def parallel(fn, n: int, *args, work: int = 1 << 30, indexed: bool = False) -> int:
    """Call ``fn(lo, hi, *args)`` over ``range(n)`` cut into one contiguous chunk per thread.

    ``fn`` must release the GIL (a ``nogil`` numba kernel, or NumPy calls on large
    arrays) and write disjoint outputs per chunk. ``work`` estimates the call's
    element count: below about 32k one thread does it all, as a hand-off costs
    more than it saves. With ``indexed`` the call is ``fn(i, lo, hi, *args)``, ``i``
    the chunk's number (below ``num_threads()``), for partial sums. The calling
    thread runs the first chunk itself. Returns the number of chunks.
    """
    t = min(_threads["n"], n)
    if t <= 1 or work < 32768 or getattr(_inside, "active", False):
        t = 1   # small work, or a call from inside a chunk: the pool's threads may all be busy
    bounds = [n * i // t for i in range(t + 1)]
    calls = [((i,) if indexed else ()) + (bounds[i], bounds[i + 1]) + args for i in range(t)]
    if t == 1:
        fn(*calls[0])
        return 1
    pool = _pool()
    futures = [pool.submit(_run_chunk, fn, c) for c in calls[1:]]
    try:
        _run_chunk(fn, calls[0])
    finally:
        for f in futures:
            f.result()
    return t


_inside = threading.local()   # set while a thread runs a chunk: nested calls then run serially


def _run_chunk(fn, args):
    _inside.active = True
    try:
        fn(*args)
    finally:
        _inside.active = False


# ----------------------------------------------------------------------------- chunks that call BLAS

_blas = {"libs": None, "saved": None}


def _blas_libs():
    """threadpoolctl's controllers of the loaded BLAS libraries ([] without threadpoolctl)."""
    if _blas["libs"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            from deepbox.backend import xp  # noqa: F401  (NumPy's BLAS must be loaded to be found)
            _blas["libs"] = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except ImportError:
            _blas["libs"] = []
    return _blas["libs"]


def blas_single() -> bool:
    """Make BLAS run one thread per call, for code that splits its GEMMs over deepbox's threads.

    The setting stays until ``blas_multi`` (called by the ops whose large GEMMs want BLAS's own
    threads): switching back after every convolution would let BLAS's worker threads, which
    spin for a while after each multi-threaded call, compete with deepbox's. False when
    threadpoolctl cannot control the BLAS.
    """
    if _blas["saved"] is not None:
        return True
    libs = _blas_libs()
    if not libs:
        return False
    _blas["saved"] = [c.get_num_threads() for c in libs]
    for c in libs:
        c.set_num_threads(1)
    return True


def blas_multi() -> None:
    """Give BLAS back the thread count it had before ``blas_single`` (a no-op when it has it)."""
    saved = _blas["saved"]
    if saved is not None:
        _blas["saved"] = None
        for c, k in zip(_blas["libs"], saved):
            c.set_num_threads(k)


def parallel_gemms(fn, n: int, *args, work: int = 1 << 30, indexed: bool = False) -> int:
    """``parallel`` for chunks that each copy and multiply (a convolution a few images at a time).

    BLAS splits one small GEMM over its own threads poorly and leaves the copies around it on one
    core; here each thread takes whole chunks and BLAS runs single-threaded inside them
    (``blas_single``). Measured on 2 cores, whole training steps: ResNet-20 461 -> 332 ms, the BN
    CNN 68 -> 50 ms. Without threadpoolctl, or with one thread, the chunks run in the calling
    thread with BLAS as configured.
    """
    if _threads["n"] > 1 and n > 1 and not getattr(_inside, "active", False) and blas_single():
        return parallel(fn, n, *args, work=work, indexed=indexed)
    fn(*(((0,) if indexed else ()) + (0, n) + args))
    return 1

"""The thread pool of the fast kernels, and how a call's work is cut into chunks for it.

NumPy runs each elementwise pass, copy and reduction on one core, while BLAS and PyTorch use them
all. The compiled kernels (and NumPy calls on large arrays) release the GIL, so a plain thread pool
runs one contiguous chunk of a call per thread (``parallel``); there is no numba threading layer to
conflict with BLAS's threads, with ``fork`` in DataLoader workers, or with user threads.
Convolutions split their im2col + GEMM chunks over the same pool with BLAS held at one thread
(``parallel_gemms``, ``blas_single``), and so do large linear layers (by rows), causal attention (by
batch) and the LSTM (by batch columns, through the whole sequence); the ops that run in one piece on
BLAS's own threads (an LSTM over a small batch, non-causal attention, GRU and RNN) give them back
(``blas_multi``).

``DEEPBOX_NUM_THREADS`` (else ``OMP_NUM_THREADS``, else the CPUs this process may use) sets the
thread count; ``deepbox.set_num_threads`` sets it and BLAS's together.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["num_threads", "set_num_threads", "parallel", "parallel_gemms", "blas_single", "blas_multi",
           "split_work"]

_lock = threading.Lock()


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


def split_work(n, ns_per_element):
    """``parallel``'s ``work`` for a call over ``n`` elements that each cost ``ns_per_element``.

    ``parallel`` keeps a call on one thread below ``work`` 32768; handing a chunk to another thread
    costs tens of microseconds, so that threshold is put at about 100 us of estimated work.
    """
    return int(n * ns_per_element * 0.33)

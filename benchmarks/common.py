"""Shared timing helpers for the benchmarks: warm-up, repetitions, medians, ratios."""
from __future__ import annotations

import statistics
import time


def median_time(fn, reps: int = 7, warmup: int = 2, inner: int = 1, clock=time.perf_counter) -> float:
    """Median time of ``fn`` in seconds over ``reps`` runs of ``inner`` calls each (per call).

    ``clock=time.process_time`` measures CPU time instead of wall time: for single-threaded work it is
    the same quantity, and other processes on a shared machine barely disturb it.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - t0) / inner)
    return statistics.median(times)


def setup_torch(threads: int | None = None):
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return torch


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        infos = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}"
                 for i in threadpool_info() if i.get("user_api") == "blas"]
        return "; ".join(infos)
    except ImportError:
        return "threadpoolctl not installed"


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def print_table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))

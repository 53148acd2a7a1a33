"""Run one workload in one framework in this process; print a JSON line with times and peak memory.

Used by ``python -m benchmarks``, which starts one process per (workload, framework) so that
neither framework's memory or threads affect the other's numbers.
"""
from __future__ import annotations

import json
import resource
import statistics
import sys
import time


def main():
    name, framework = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    threads = int(_opt("--threads", "2"))
    clock = time.process_time if _opt("--clock", "wall") == "cpu" else time.perf_counter
    import numpy  # noqa: F401  (load OpenBLAS first, so that the limit below reaches it)

    try:  # the same BLAS thread count for NumPy (deepbox) as for PyTorch
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass
    if framework == "torch":
        import torch as lib

        lib.set_num_threads(threads)
    else:
        import deepbox as lib
        lib.set_num_threads(threads)   # BLAS and deepbox's own kernel threads
        import deepbox.nn  # noqa: F401
        import deepbox.optim  # noqa: F401
        import deepbox.utils.data  # noqa: F401
    from benchmarks.workloads import WORKLOADS

    builder, reps, _ = WORKLOADS[name]
    fn, meta = builder(lib, quick)
    if quick:
        reps = max(1, min(reps, 3 if reps < 50 else 20))
    inner = 1
    fn()  # warm-up (page faults, caches, lazy init)
    if reps >= 50:  # tiny work: time batches of calls
        inner, reps = reps, 7 if not quick else 3
    else:
        fn()
    times = []
    for _ in range(max(reps, 3) if not quick else reps):
        t0 = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - t0) / inner)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"workload": name, "framework": framework, "threads": threads, "clock": _opt("--clock", "wall"),
           "median_s": statistics.median(times), "times_s": times,
           "peak_rss_mb": peak_kb / 1024, **meta}
    print(json.dumps(out))


def _opt(flag, default):
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


if __name__ == "__main__":
    main()

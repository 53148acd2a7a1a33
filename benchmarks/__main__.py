"""deepbox vs PyTorch on the course's workloads, side by side: ``python -m benchmarks [NAME...] [--quick]``.

Each (workload, framework) pair runs in its own process (same data, batch size, optimiser and 2
threads), after a warm-up, over several repetitions; the table shows the medians, their ratio
(deepbox / PyTorch: below 1 means deepbox is faster), the target, and each side's peak memory.
Results also go to a JSON file (``--json``, default benchmarks/results.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

from benchmarks.common import blas_info, fmt_time, print_table
from benchmarks.workloads import TARGETS, WORKLOADS, lenet_flops, mlp_flops


def gemm_peak_flops(n: int = 2048, reps: int = 5) -> float:
    """This machine's float32 GEMM rate with NumPy's BLAS: the ceiling for the dense workloads."""
    import time

    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b, time) for _ in range(reps))
    return 2 * n**3 / best


def _kernels_info() -> str:
    """Whether deepbox's workloads run on its compiled kernels (numba) or on NumPy alone."""
    from deepbox import kernels

    if kernels.enabled():
        import numba

        return f"compiled (numba {numba.__version__})"
    return "NumPy only (DEEPBOX_NUMBA=0)" if os.environ.get("DEEPBOX_NUMBA") == "0" else "NumPy only (no numba)"


def _timed(fn, time):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_pair(name, quick, threads=2, clock="wall", rounds=1):
    """Each framework in its own process, ``rounds`` times, alternating (deepbox, PyTorch, deepbox, ...).

    With several rounds a slow spell of a shared machine hits both frameworks alike; the result keeps
    each round's median (``round_medians_s``) and reports the median of those as ``median_s``.
    """
    res = {}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = {"deepbox": [], "torch": []}
    for _ in range(rounds):
        for fw in ("deepbox", "torch"):
            if "error" in res.get(fw, {}):
                continue
            cmd = [sys.executable, "-m", "benchmarks.run_one", name, fw, "--threads", str(threads), "--clock", clock]
            cmd += ["--quick"] if quick else []
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env)
            if p.returncode != 0:
                res[fw] = {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
                continue
            runs[fw].append(json.loads(p.stdout.strip().splitlines()[-1]))
    for fw, done in runs.items():
        if fw not in res:
            medians = [r["median_s"] for r in done]
            res[fw] = dict(done[0], median_s=statistics.median(medians), round_medians_s=medians,
                           peak_rss_mb=max(r["peak_rss_mb"] for r in done))
    return res


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help=f"workloads to run (default: all): {', '.join(WORKLOADS)}")
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (a smoke test)")
    p.add_argument("--threads", type=int, default=2, help="BLAS/intra-op threads for both frameworks (default 2)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time (default) or CPU time; CPU time with --threads 1 is robust on a busy machine")
    p.add_argument("--rounds", type=int, default=1,
                   help="run each framework's process this many times, alternating, and report the median of "
                        "their medians (default 1; 3 on a machine that other jobs share)")
    p.add_argument("--json", default=None, help="write results here (default benchmarks/results.json; "
                                                "results-quick.json with --quick)")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    unknown = [n for n in args.names if n not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    names = args.names or list(WORKLOADS)
    try:  # the GEMM peak under the same thread count as the workloads
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            peak = gemm_peak_flops(1024 if args.quick else 2048)
    except ImportError:
        peak = gemm_peak_flops(1024 if args.quick else 2048)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; BLAS: {blas_info()}")
    print(f"float32 GEMM peak (numpy 2048^2 matmul): {peak / 1e9:.0f} GFLOP/s")
    kernels = _kernels_info()
    print(f"deepbox kernels: {kernels}")
    print(f"threads: {args.threads} for both frameworks; clock: {args.clock} time; "
          f"{args.rounds} round{'s' if args.rounds > 1 else ''} of processes per framework\n")
    rows, results = [], []
    for name in names:
        r = run_pair(name, args.quick, args.threads, args.clock, args.rounds)
        d, t = r.get("deepbox", {}), r.get("torch", {})
        entry = {"workload": name, "description": WORKLOADS[name][2], "deepbox": d, "torch": t,
                 "target": TARGETS.get(name)}
        if "median_s" in d and "median_s" in t:
            ratio = d["median_s"] / t["median_s"]
            entry["ratio"] = ratio
            extra = ""
            if "images_per_call" in d:
                rate_d = d["images_per_call"] / d["median_s"]
                rate_t = t["images_per_call"] / t["median_s"]
                extra = f"{rate_d:.0f} vs {rate_t:.0f} img/s"
            if name == "mlp_step":
                f = mlp_flops(128) / d["median_s"]
                entry["deepbox_gemm_fraction"] = f / peak
                extra = f"{f / 1e9:.0f} GFLOP/s = {100 * f / peak:.0f}% of peak"
            if name == "lenet5_step":
                f = lenet_flops(128) / d["median_s"]
                entry["deepbox_gemm_fraction"] = f / peak
                extra = f"{f / 1e9:.0f} GFLOP/s = {100 * f / peak:.0f}% of peak"
            target = TARGETS.get(name)
            verdict = "" if target is None else ("met" if ratio <= target else "NOT met")
            rows.append((name, fmt_time(d["median_s"]), fmt_time(t["median_s"]), f"{ratio:.2f}",
                         f"<= {target}" if target else "-", verdict, f"{d['peak_rss_mb']:.0f} MB",
                         f"{t['peak_rss_mb']:.0f} MB", extra))
        else:
            rows.append((name, d.get("error", "?")[:40], t.get("error", "?")[:40], "-", "-", "error", "-", "-", ""))
        results.append(entry)
    print_table(rows, ["workload", "deepbox", "PyTorch", "ratio", "target", "", "deepbox mem", "PyTorch mem",
                       "notes"])
    out = args.json or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "results-quick.json" if args.quick else "results.json")
    with open(out, "w") as f:
        json.dump({"gemm_peak_flops": peak, "blas": blas_info(), "kernels": kernels, "quick": args.quick,
                   "threads": args.threads, "rounds": args.rounds,
                   "clock": args.clock, "results": results}, f,
                  indent=2)
    print(f"\nwritten: {out}")
    failed = [e["workload"] for e in results if "ratio" not in e]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

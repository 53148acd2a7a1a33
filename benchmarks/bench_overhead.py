"""Per-op overhead on tiny tensors: a chain of small ops, forward and backward, deepbox vs PyTorch.

The course's small graphs (a neuron, a 2-layer net on a handful of points) are
dominated by the framework's per-op cost, not by arithmetic. Target: deepbox's
time at most half of PyTorch's. Both run on one thread and are timed in CPU time
(process time), which other processes on a shared machine barely disturb.

    python -m benchmarks.bench_overhead [--quick]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.common import fmt_time, median_time, print_table, setup_torch


def workloads(lib, arrays):
    x, w, b = (lib.tensor(a, requires_grad=True) for a in arrays)

    def neuron():  # 4 ops: mul, add, relu, sum
        y = (x * w + b).relu().sum()
        y.backward()
        x.grad = w.grad = b.grad = None

    def chain16():  # 16 small ops
        h = x
        for _ in range(4):
            h = (h * w + b).tanh()
        y = (h * h).sum()
        y.backward()
        x.grad = w.grad = b.grad = None

    def forward_only():
        with lib.no_grad():
            (x * w + b).relu().sum()

    return {"neuron fwd+bwd (4 ops)": (neuron, 4), "tanh chain fwd+bwd (16 ops)": (chain16, 16),
            "neuron forward, no_grad (4 ops)": (forward_only, 4)}


def run(quick: bool = False) -> list[dict]:
    import deepbox

    torch = setup_torch(threads=1)  # tiny tensors: threading only adds overhead in either framework
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(64).astype(np.float32) for _ in range(3)]
    reps, inner = (5, 200) if quick else (9, 2000)
    results = []
    d_work, t_work = workloads(deepbox, arrays), workloads(torch, arrays)
    for name in d_work:
        fd, nops = d_work[name]
        ft, _ = t_work[name]
        td = median_time(fd, reps=reps, inner=inner, clock=time.process_time)
        tt = median_time(ft, reps=reps, inner=inner, clock=time.process_time)
        results.append({"workload": name, "deepbox_s": td, "torch_s": tt, "ratio": td / tt,
                        "deepbox_per_op_s": td / nops, "torch_per_op_s": tt / nops})
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    res = run(args.quick)
    rows = [(r["workload"], fmt_time(r["deepbox_s"]), fmt_time(r["torch_s"]), f"{r['ratio']:.2f}",
             fmt_time(r["deepbox_per_op_s"]), fmt_time(r["torch_per_op_s"])) for r in res]
    print_table(rows, ["workload", "deepbox", "PyTorch", "ratio", "deepbox/op", "PyTorch/op"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()

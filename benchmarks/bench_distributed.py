"""Data-parallel training throughput and all-reduce cost, on this machine.

    python benchmarks/bench_distributed.py                 # both models, then the all-reduce sweep
    python benchmarks/bench_distributed.py --only convnet --steps 10
    python benchmarks/bench_distributed.py --only allreduce

Throughput: images/s of a training step (forward, cross-entropy, backward, SGD with momentum) at a
global batch of ``--batch`` 1x28x28 images, for

* 1 process x 1 thread (the baseline of parallel efficiency),
* 1 process x 2 threads (BLAS and deepbox's kernels on both cores), and
* 2 processes x 1 thread (``deepbox launch --nproc 2``: DistributedDataParallel with SyncBatchNorm,
  ``batch / 2`` images per rank), as ``deepbox train --nproc 2`` runs it;

for the BN CNN (``convnet``: 2 x conv3x3 + BN + ReLU + pool, 32/64 channels, FC 128) and
``resnet20``. Each figure is the median over ``--steps`` timed steps after 2 warm-up steps. For the
2-process run it also reports how long backward waited, per step, for the gradient all-reduces
to finish after its last gradient was ready (communication not hidden behind computation).

All-reduce: the median time of DistributedDataParallel's averaging all-reduce (non-blocking MPI
``Iallreduce``, float32) on 2 ranks for gradient sizes from 4 KB to 64 MB, with the algorithmic
bandwidth ``2 (N-1)/N * bytes / time`` of a ring all-reduce.

On a shared 2-core machine every figure moves with the other tenants' load; compare the two
configurations within one run, never across runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

MODELS = ("convnet", "resnet20")


# ------------------------------------------------------------------------------------------ workers
def _worker_train(model_name: str, batch: int, steps: int, sync_bn: bool = True) -> dict:
    import numpy as np

    import deepbox
    import deepbox.distributed as dist
    import deepbox.nn.functional as F
    from deepbox import nn
    from deepbox.models import get_model

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    deepbox.manual_seed(0)
    model = get_model(model_name, in_channels=1, num_classes=10, image_size=28) if model_name == "convnet" else \
        get_model(model_name, in_channels=1, num_classes=10)
    ddp = None
    if world > 1:
        if sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ddp = nn.parallel.DistributedDataParallel(model)
    net = ddp or model
    opt = deepbox.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    per = batch // world
    rng = np.random.default_rng(rank)
    x = deepbox.tensor(rng.standard_normal((per, 1, 28, 28)).astype(np.float32))
    y = deepbox.tensor(rng.integers(0, 10, per))
    times, waits = [], []
    for i in range(steps + 2):
        w0 = ddp.comm_wait_s if ddp else 0.0
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        t = time.perf_counter() - t0
        if i >= 2:
            times.append(t)
            waits.append((ddp.comm_wait_s - w0) if ddp else 0.0)
    # the slowest rank sets the pace: take each step's maximum over ranks
    tt = deepbox.tensor(np.array(times))
    dist.all_reduce(tt, op=dist.ReduceOp.MAX)
    med = statistics.median(tt.numpy().tolist())
    n_params = sum(p.numel() for p in model.parameters())
    out = {"model": model_name, "processes": world, "threads": int(os.environ.get("DEEPBOX_NUM_THREADS", "0") or 0),
           "global_batch": batch, "step_s": med, "images_per_s": batch / med, "params": n_params,
           "grad_mb": n_params * 4 / 1e6, "comm_wait_s": statistics.median(waits),
           "buckets": len(ddp._buckets) if ddp else 0}
    dist.destroy_process_group()
    return out


def _worker_allreduce(sizes_kb: list[int], reps: int) -> list[dict]:
    import numpy as np

    import deepbox.distributed as dist
    from deepbox.distributed.collectives import start_allreduce
    from deepbox.distributed.process_group import _world

    dist.init_process_group("mpi")
    pg = _world()
    n = pg.size()
    rows = []
    for kb in sizes_kb:
        arr = np.ones(kb * 1024 // 4, dtype=np.float32)
        ts = []
        for i in range(reps + 1):
            dist.barrier()
            t0 = time.perf_counter()
            start_allreduce(pg, arr, average=True).wait()
            if i:
                ts.append(time.perf_counter() - t0)
        t = statistics.median(ts)
        nbytes = arr.nbytes
        rows.append({"bytes": nbytes, "median_s": t, "algbw_gb_s": 2 * (n - 1) / n * nbytes / t / 1e9})
    dist.destroy_process_group()
    return rows


# ------------------------------------------------------------------------------------------ driver
def _run(cmd: list[str], env: dict) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(line[-1][len("RESULT "):])


def _env(threads: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "DEEPBOX_NUM_THREADS"):
        env[var] = str(threads)
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=MODELS + ("allreduce",), action="append")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=20, help="all-reduce repetitions per size")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", choices=("train", "allreduce"), help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--no-sync-bn", action="store_true", help="2 processes with plain (per-rank) batch norm")
    ap.add_argument("--sizes-kb", default="4,64,1024,4096,16384,65536", help="all-reduce sizes in KB")
    args = ap.parse_args(argv)

    if args.worker == "train":
        r = _worker_train(args.model, args.batch, args.steps, sync_bn=not args.no_sync_bn)
        if os.environ.get("RANK", "0") == "0":
            print("RESULT " + json.dumps(r), flush=True)
        return 0
    if args.worker == "allreduce":
        rows = _worker_allreduce([int(s) for s in args.sizes_kb.split(",")], args.reps)
        if os.environ.get("RANK", "0") == "0":
            print("RESULT " + json.dumps(rows), flush=True)
        return 0

    me = os.path.abspath(__file__)
    todo = args.only or list(MODELS) + ["allreduce"]
    results = {"train": [], "allreduce": None}
    for name in [t for t in todo if t in MODELS]:
        base = ["--worker", "train", "--model", name, "--batch", str(args.batch), "--steps", str(args.steps)]
        if args.no_sync_bn:
            base.append("--no-sync-bn")
        single = _run([sys.executable, me] + base, _env(1))
        one = _run([sys.executable, me] + base, _env(2))
        two = _run([sys.executable, "-m", "deepbox", "launch", "--nproc", "2", "--threads", "1", me] + base, _env(1))
        results["train"] += [single, one, two]
        print(f"{name} ({one['params']:,} parameters, {one['grad_mb']:.2f} MB of float32 gradients), batch "
              f"{args.batch}:")
        print(f"  1 process  x 1 thread:  {single['images_per_s']:7.1f} images/s "
              f"({single['step_s'] * 1e3:6.1f} ms/step)")
        print(f"  1 process  x 2 threads: {one['images_per_s']:7.1f} images/s ({one['step_s'] * 1e3:6.1f} ms/step)")
        print(f"  2 processes x 1 thread: {two['images_per_s']:7.1f} images/s ({two['step_s'] * 1e3:6.1f} ms/step; "
              f"{two['buckets']} buckets; backward waited {two['comm_wait_s'] * 1e3:.2f} ms/step for all-reduces)")
        print(f"  2 processes vs 1 process x 2 threads: {two['images_per_s'] / one['images_per_s']:.2f}x; "
              f"vs 1 process x 1 thread: {two['images_per_s'] / single['images_per_s']:.2f}x")
    if "allreduce" in todo:
        rows = _run([sys.executable, "-m", "deepbox", "launch", "--nproc", "2", "--threads", "1", me, "--worker",
                     "allreduce", "--reps", str(args.reps), "--sizes-kb", args.sizes_kb], _env(1))
        results["allreduce"] = rows
        print("all-reduce (average) of float32 gradients over 2 ranks on this machine:")
        for r in rows:
            print(f"  {r['bytes'] / 1e6:9.3f} MB  {r['median_s'] * 1e3:9.3f} ms  {r['algbw_gb_s']:6.2f} GB/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run a script on 2 ranks under ``deepbox launch`` from a test, and collect what each rank reported.

The 2-rank tests run one MPI job per group of checks (starting a job costs a few seconds), then
assert each check's outcome in its own pytest test. A check is a function ``check_NAME(rank, size)``
in a module of this folder; ``run_checks.py`` runs the ones a test names on every rank and writes
``OUT/rank<r>.json`` = {name: "ok" | the error}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def require_mpi() -> None:
    """The 2-rank tests need mpi4py and mpirun (the test extra installs both): fail loudly without them."""
    import mpi4py  # noqa: F401  - ImportError here means: pip install -e ".[test]" (it brings deepbox[distributed])

    from deepbox.distributed.launch import find_mpirun

    find_mpirun()


def launch(args: list[str], nproc: int = 2, timeout: float = 180, env: dict | None = None, threads: int = 1):
    """``python -m deepbox launch --nproc N ARGS``; returns (CompletedProcess, seconds)."""
    require_mpi()
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.pop("PYTEST_XDIST_WORKER", None)
    e.update(env or {})
    cmd = [sys.executable, "-m", "deepbox", "launch", "--nproc", str(nproc), "--threads", str(threads)] + args
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=ROOT)
    return p, time.monotonic() - t0


def run_checks(module: str, names: list[str], out_dir: str, nproc: int = 2) -> list[dict]:
    """Run ``check_<name>`` of ``tests/distributed/<module>.py`` on every rank; one result dict per rank."""
    p, _ = launch([os.path.join(HERE, "run_checks.py"), module, out_dir] + names, nproc=nproc)
    results = []
    for r in range(nproc):
        path = os.path.join(out_dir, f"rank{r}.json")
        if not os.path.exists(path):
            raise AssertionError(f"rank {r} wrote no results (exit {p.returncode}):\n{p.stdout[-3000:]}\n"
                                 f"{p.stderr[-3000:]}")
        with open(path) as f:
            results.append(json.load(f))
    if p.returncode != 0:
        raise AssertionError(f"the job exited with {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return results


def names_in(module) -> list[str]:
    return sorted(n[len("check_"):] for n in dir(module) if n.startswith("check_"))

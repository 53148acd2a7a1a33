"""benchmarks/bench_distributed.py runs (a smoke test of its all-reduce sweep: it reports, never how fast)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.distributed.mpi_jobs import ROOT, require_mpi


def test_allreduce_sweep_runs(tmp_path):
    require_mpi()
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "benchmarks/bench_distributed.py", "--only", "allreduce", "--sizes-kb", "4,64",
                        "--reps", "2", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads(out.read_text())["allreduce"]
    assert [r["bytes"] for r in rows] == [4096, 65536] and all(r["median_s"] > 0 for r in rows)

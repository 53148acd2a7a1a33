"""The benchmark suite runs (a smoke test: it checks that it runs and reports, never how fast)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_suite_quick_mode_runs_both_frameworks(tmp_path):
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, "-m", "benchmarks", "tiny_graph", "mlp_step", "lenet5_infer_b1", "--quick",
                        "--threads", "1", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ratio" in p.stdout and "tiny_graph" in p.stdout
    res = json.loads(out.read_text())
    assert [r["workload"] for r in res["results"]] == ["tiny_graph", "mlp_step", "lenet5_infer_b1"]
    for r in res["results"]:
        assert r["deepbox"]["median_s"] > 0 and r["torch"]["median_s"] > 0
        assert r["deepbox"]["peak_rss_mb"] > 0


def test_overhead_benchmark_runs():
    p = subprocess.run([sys.executable, "-m", "benchmarks.bench_overhead", "--quick"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "neuron fwd+bwd" in p.stdout

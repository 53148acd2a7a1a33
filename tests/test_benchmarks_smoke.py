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


def test_rounds_alternate_processes_and_report_the_median_of_medians(tmp_path):
    """``--rounds 2``: two processes per framework; the reported median is the median of their medians. Runs
    the two workloads that issue 21 added (a ResNet block stack, a small-batch LSTM language model)."""
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, "-m", "benchmarks", "resnet_blocks_step", "lstm_lm_step", "--quick",
                        "--threads", "1", "--rounds", "2", "--json", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(out.read_text())
    assert res["rounds"] == 2
    for r in res["results"]:
        for fw in ("deepbox", "torch"):
            rounds = r[fw]["round_medians_s"]
            assert len(rounds) == 2 and all(x > 0 for x in rounds)
            assert r[fw]["median_s"] == sum(rounds) / 2
        assert r["target"] == 1.0


def test_rounds_must_be_positive():
    p = subprocess.run([sys.executable, "-m", "benchmarks", "tiny_graph", "--quick", "--rounds", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--rounds must be at least 1" in p.stderr

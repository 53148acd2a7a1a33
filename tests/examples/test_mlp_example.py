"""The nn toolkit's example: MLP with dropout, batch norm, AdamW and a cosine schedule on MNIST-10k."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import mlp_regularised  # noqa: E402


def test_mlp_example_learns_and_its_checkpoint_reloads(tmp_path):
    r = mlp_regularised.main(["--quick", "--out", str(tmp_path)])
    assert r["test_accuracy"] > 0.75  # 3 epochs on 1,000 digits; chance is 0.10
    assert r["reload_agrees"]
    assert (tmp_path / "mlp.safetensors").exists()

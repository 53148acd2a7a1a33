"""The sequence examples run end to end in their --quick mode."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,key", [("char_lstm", "val_bpc"), ("char_gpt", "val_bpc"),
                                      ("mnist_row_lstm", "test_accuracy"), ("seq2seq_reverse", "exact_match")])
def test_example_quick(name, key, capsys):
    res = _load(name).main(["--quick"])
    assert math.isfinite(res[key])
    if key == "val_bpc":
        assert res[key] < math.log2(83)     # better than uniform guessing after a few steps
    out = capsys.readouterr().out
    assert out.strip()

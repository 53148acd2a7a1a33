"""Run an example script's ``main`` in quick mode, as the example tests do."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, tmp_path: Path, *extra: str) -> tuple[dict, Path]:
    """``examples/<name>.py --quick --out tmp_path/<name>``; returns its results and the run folder."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / name
    res = module.main(["--quick", "--out", str(out), *extra])
    assert json.loads((out / "results.json").read_text()).keys() == res.keys()
    return res, out

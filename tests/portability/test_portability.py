"""The portability corpus: short PyTorch programs in the idioms of tutorials and course code (device
boilerplate, legacy constructors, distributions in a VAE and a REINFORCE loop, a spatial transformer,
activation checkpointing, the profiler, parametrizations, a spectral filter through torch.fft), each run
with real PyTorch and with ``import deepbox as torch`` (the same file, torch's modules aliased to deepbox's),
giving the same result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROGRAMS = sorted(p.name for p in (HERE / "programs").glob("*.py"))
ROOT = HERE.parent.parent

# run a program with `import torch` answered by deepbox: every torch module the corpus imports is aliased
_AS_DEEPBOX = """
import importlib, runpy, sys
import deepbox
sys.modules["torch"] = deepbox
for name in ("nn", "nn.functional", "nn.utils", "nn.utils.parametrizations", "optim", "distributions",
             "utils", "utils.data", "utils.checkpoint", "profiler", "amp", "cuda", "accelerator", "fft"):
    sys.modules["torch." + name] = importlib.import_module("deepbox." + name)
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _run(program: str, framework: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(HERE / "programs" / program)] if framework == "torch" else \
        [sys.executable, "-c", _AS_DEEPBOX, str(HERE / "programs" / program)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"{program} under {framework} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _close(a, b, path="result"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5), path
    elif isinstance(a, str) and a.replace(".", "", 1).lstrip("-").isdigit():
        assert float(a) == pytest.approx(float(b), rel=1e-4, abs=1e-5), path
    else:
        assert a == b, path


@pytest.mark.parametrize("program", PROGRAMS)
def test_program_gives_pytorchs_result(program):
    _close(_run(program, "deepbox"), _run(program, "torch"))

"""deepbox export RUN --format onnx: the run's model as an ONNX file that onnxruntime runs like deepbox."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

import deepbox
from deepbox.cli.common import restore_model
from deepbox.cli.main import main

SMALL = ["--model", "lenet5", "--limit-train", "128", "--limit-test", "64", "--batch-size", "64", "--quiet"]


def test_export_writes_an_onnx_file_that_matches_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "model.onnx" in out and "largest difference" in out
    path = run / "model.onnx"
    model, cfg = restore_model(str(run))
    x = deepbox.rand(3, *cfg["data"]["input_shape"])
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    got = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"image": x._data})[0]
    with deepbox.no_grad():
        np.testing.assert_allclose(got, model(x)._data, rtol=1e-4, atol=1e-5)
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), "--opset", "18"]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_export_bad_input_exits_with_status_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err

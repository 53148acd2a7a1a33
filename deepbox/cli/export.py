"""``deepbox export RUN --format onnx [--out FILE]``: a trained run's model as an ONNX file.

The model is rebuilt from the run's checkpoint, traced on one example input of the shape it was
trained on (images ``(1, C, H, W)``; a language model ``(1, seq_len)`` token ids) with a dynamic
batch axis, written with ``deepbox.onnx.export``, and, when onnxruntime is installed, run once
against deepbox to report the largest difference.
"""
from __future__ import annotations

import os

import numpy as np

from deepbox.cli.common import CLIError, build_model, read_run, say

__all__ = ["add_parsers", "cmd_export"]


def add_parsers(sub, common) -> None:
    p = sub.add_parser("export", parents=[common], help="export a trained run's model (ONNX)",
                       description="Write the model of a run folder as an ONNX file (needs pip install "
                                   "'deepbox[onnx]'); the batch axis of the input and output is dynamic.")
    p.add_argument("run", help="a run folder written by 'deepbox train'")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="the file format (only onnx)")
    p.add_argument("--out", help="the file to write (default RUN/model.onnx)")
    p.add_argument("--opset", type=int, default=17, help="the ONNX opset (17-20, default 17)")
    p.set_defaults(func=cmd_export)


def _example_input(run_cfg: dict, model):
    import deepbox

    data = run_cfg.get("data", {})
    if run_cfg.get("task") == "language-model":
        T = int(data.get("seq_len", 32))
        T = min(T, int(getattr(model, "block_size", T)))
        return deepbox.zeros(1, T, dtype=deepbox.int64), "tokens", "logits"
    shape = data.get("input_shape")
    if not shape:
        raise CLIError("the run's configuration has no input shape (data.input_shape); expected a run written by "
                       "'deepbox train'")
    return deepbox.zeros(1, *[int(s) for s in shape]), "image", "logits"


def cmd_export(args) -> int:
    import deepbox.onnx
    from deepbox.onnx import OnnxExporterError

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise CLIError("'deepbox export --format onnx' needs the onnx package: pip install 'deepbox[onnx]'") from None
    run_cfg, ckpt, state = read_run(args.run)
    name = run_cfg["model"]["name"]
    model = build_model(name, run_cfg["model"]["kwargs"])
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CLIError(f"checkpoint {ckpt} does not fit model {name!r}: {e}") from None
    model.eval()
    x, in_name, out_name = _example_input(run_cfg, model)
    out = args.out or os.path.join(args.run, "model.onnx")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CLIError(f"--out {out}: the folder {folder} does not exist")
    try:
        deepbox.onnx.export(model, (x,), out, input_names=[in_name], output_names=[out_name], opset_version=args.opset,
                            dynamic_axes={in_name: {0: "batch"}, out_name: {0: "batch"}})
    except (OnnxExporterError, ValueError) as e:
        raise CLIError(str(e)) from None
    say(f"{args.run}: {name} written as ONNX (opset {args.opset}) to {out} "
        f"({os.path.getsize(out) / 1e6:.2f} MB); input {in_name!r} {['batch'] + list(x.shape[1:])}")
    try:
        import onnxruntime as ort
    except ImportError:
        return 0
    import deepbox

    xb = deepbox.tensor(np.repeat(x._data, 2, axis=0)) if x._data.dtype.kind != "f" else deepbox.rand(2, *x.shape[1:])
    with deepbox.no_grad():
        want = model(xb)
    want = want[0] if isinstance(want, tuple) else want
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    got = ort.InferenceSession(out, opts, providers=["CPUExecutionProvider"]).run(None, {in_name: xb._data})[0]
    say(f"checked in onnxruntime {ort.__version__} on a batch of 2: largest difference from deepbox "
        f"{float(np.abs(got - want._data).max()):.2e}")
    return 0

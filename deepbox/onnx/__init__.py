"""``deepbox.onnx``: ``torch.onnx``'s ``export`` for deepbox models (needs ``pip install 'deepbox[onnx]'``).

``deepbox.onnx.export(model, args, "model.onnx", input_names=["x"], output_names=["y"],
dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})`` traces one forward pass and writes an
ONNX model that onnxruntime runs; see ``deepbox/onnx/export.py`` for how, and
``deepbox/onnx/ops.py`` for the ops covered.
"""
from __future__ import annotations

from deepbox.onnx.export import OnnxExporterError, UnsupportedOperatorError, export

__all__ = ["export", "OnnxExporterError", "UnsupportedOperatorError", "is_in_onnx_export"]


def is_in_onnx_export() -> bool:
    """Whether an export is tracing right now (as ``torch.onnx.is_in_onnx_export``)."""
    from deepbox.onnx import _trace

    return _trace.active()

"""``deepbox.io``: checkpoints (``save``/``load``: one safetensors file, never pickle)."""
from __future__ import annotations

from deepbox.io.checkpoint import CheckpointError, load, save

__all__ = ["save", "load", "CheckpointError"]

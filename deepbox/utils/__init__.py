"""Utilities with PyTorch's ``torch.utils`` names: ``data`` (the data pipeline), ``checkpoint``
(activation checkpointing) and ``benchmark`` (timing with medians)."""
from __future__ import annotations

from deepbox.utils import benchmark, checkpoint, data  # noqa: F401

__all__ = ["benchmark", "checkpoint", "data"]

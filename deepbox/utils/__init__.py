"""Utilities with PyTorch's ``torch.utils`` names: ``deepbox.utils.data`` is the data pipeline."""
from __future__ import annotations

from deepbox.utils import data  # noqa: F401

__all__ = ["data"]

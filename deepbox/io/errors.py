"""The error of a checkpoint that cannot be read, shared by every reader in ``deepbox.io``."""
from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(ValueError):
    """A file that is not a readable deepbox/safetensors checkpoint (truncated, corrupt or foreign)."""

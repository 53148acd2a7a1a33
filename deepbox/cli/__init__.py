"""``deepbox.cli``: the ``deepbox`` command (train, eval, predict, models, datasets, info)."""
from __future__ import annotations

from deepbox.cli.main import CLIError, build_parser, main

__all__ = ["main", "build_parser", "CLIError"]

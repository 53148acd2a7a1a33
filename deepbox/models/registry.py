"""The model zoo's registry: every model is a plain ``nn.Module`` registered under a name.

The CLI builds models by name (``deepbox train --model lenet5``), so each entry
records a builder that takes ``in_channels``/``num_classes`` (or the keyword
arguments its family needs) and a one-line summary for ``deepbox models``.
"""
from __future__ import annotations

from collections.abc import Callable

_REGISTRY: dict[str, dict] = {}


def register_model(name: str, *, task: str = "image-classification", summary: str = ""):
    """Decorator: register a model class or builder function under ``name``."""

    def deco(builder: Callable):
        if name in _REGISTRY and _REGISTRY[name]["builder"] is not builder:
            raise ValueError(f"model name {name!r} is already registered")
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = {"builder": builder, "task": task, "summary": summary or (doc[0] if doc else "")}
        return builder

    return deco


def get_model(name: str, **kwargs):
    """Build the registered model ``name`` with ``kwargs``; unknown names list the known ones."""
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown model {name!r}; known models: {known}")
    return _REGISTRY[name]["builder"](**kwargs)


def list_models(task: str | None = None) -> list[str]:
    return sorted(n for n, e in _REGISTRY.items() if task is None or e["task"] == task)


def model_info(name: str) -> dict:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return dict(_REGISTRY[name])

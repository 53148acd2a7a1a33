"""Every family of fast Functions, imported so that each registers itself as its reference's twin.

``deepbox/__init__.py`` imports this module once; ``kernels.choose`` then finds the twins.
"""
from __future__ import annotations

from deepbox.kernels import attention, conv, elementwise, indexing, linear, loss, norm, optim, pool, rnn  # noqa: F401

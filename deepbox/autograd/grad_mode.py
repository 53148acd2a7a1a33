"""Whether operations record a graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""
from __future__ import annotations

import functools


class _State:
    __slots__ = ("enabled",)

    def __init__(self):
        self.enabled = True


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


class _GradModeContext:
    """Base for the grad-mode context managers; each also works as a decorator."""

    _mode: bool

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._mode

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording: results do not require grad and nothing is saved for backward."""

    _mode = False


class enable_grad(_GradModeContext):
    """Enable graph recording inside a ``no_grad`` block."""

    _mode = True


class inference_mode(no_grad):
    """Same as ``no_grad`` in deepbox (accepted for portability)."""

    def __init__(self, mode: bool = True):
        self._mode = not mode


class set_grad_enabled(_GradModeContext):
    """``set_grad_enabled(mode)`` as a function call, context manager or decorator."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._prev = state.enabled
        state.enabled = self._mode  # takes effect immediately when called as a function

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def __call__(self, fn):
        state.enabled = self._prev  # used as a decorator: undo the immediate effect
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = state.enabled
            state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                state.enabled = prev

        return wrapper

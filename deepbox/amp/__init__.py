"""``deepbox.amp``: mixed-precision training's API, on the CPU in full precision.

``autocast`` is accepted so that mixed-precision training loops run unchanged, but deepbox
computes in the tensors' own dtypes (float32 by default): NumPy on the CPU has no fast
half-precision matrix multiply to gain from. ``GradScaler`` is the real algorithm (scale the
loss, unscale the gradients, skip a step whose gradients overflowed, adapt the scale), so a
loop that uses it trains the same way it would with PyTorch on a CPU; for ``device="cuda"``
it is disabled with a warning, as PyTorch disables it when CUDA is unavailable.
"""
from __future__ import annotations

import math
import warnings
from enum import Enum

from deepbox import backend
from deepbox.backend import float16

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "is_autocast_available"]


def is_autocast_available(device_type: str) -> bool:
    return device_type == "cpu"


class autocast:  # noqa: N801 - PyTorch's name
    """Accepted for portability: inside the block ops still compute in their inputs' dtypes.

    ``device_type`` other than ``"cpu"`` warns and disables the region, as PyTorch does when
    that device is not available. Usable as a context manager and as a decorator.
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled: bool | None = None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device = device_type
        self.fast_dtype = dtype if dtype is not None else float16 if device_type == "cuda" else None
        self._enabled = enabled
        if device_type != "cpu" and enabled:
            warnings.warn(f"User provided device_type of '{device_type}', but deepbox runs on the CPU only. "
                          "Disabling autocast.", UserWarning, stacklevel=2)
            self._enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapper


def custom_fwd(fwd=None, *, device_type: str = "cpu", cast_inputs=None):
    """Accepted for custom Functions written for autocast: returns the forward unchanged."""
    if fwd is None:
        return lambda f: f
    return fwd


def custom_bwd(bwd=None, *, device_type: str = "cpu"):
    """Accepted for custom Functions written for autocast: returns the backward unchanged."""
    if bwd is None:
        return lambda f: f
    return bwd


class _State(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


class GradScaler:
    """Dynamic loss scaling, as ``torch.amp.GradScaler``.

    ``scale(loss)`` multiplies by the current scale; ``step(optimizer)`` divides the gradients by it
    (unless ``unscale_`` already did), and skips the step when any gradient is inf or NaN;
    ``update()`` halves the scale after such a step (``backoff_factor``) and doubles it after
    ``growth_interval`` clean steps (``growth_factor``).
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        self._device = device
        self._enabled = enabled
        if device != "cpu" and enabled:
            warnings.warn(f"deepbox runs on the CPU only: GradScaler is enabled only for device 'cpu', not "
                          f"{device!r}. Disabling.", UserWarning, stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise ValueError("The backoff factor must be < 1.0.")
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def _state_of(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _State.READY, "found_inf": False})

    def scale(self, outputs):
        """``outputs`` (a tensor or nested lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by the scale in place, and note whether any is inf or NaN."""
        if not self._enabled:
            return
        state = self._state_of(optimizer)
        if state["stage"] is _State.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is _State.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._data
                g *= inv
                if not bool(backend.xp.isfinite(g).all()):
                    found = True
        state["found_inf"] = found
        state["stage"] = _State.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if not yet done) and step, unless a gradient overflowed; returns the step's return value."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        state = self._state_of(optimizer)
        if state["stage"] is _State.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is _State.READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _State.STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Adapt the scale to the steps since the last update (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        else:
            if not self._per_optimizer:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(s["found_inf"] for s in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = self._scale * self._growth_factor
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


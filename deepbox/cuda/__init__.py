"""``deepbox.cuda``: what PyTorch's CPU-only build answers, so that device-picking code takes the CPU path.

``is_available()`` is False and ``device_count()`` is 0; memory queries answer 0 and
``empty_cache`` does nothing, as in a PyTorch built without CUDA. Calls that need a GPU
(``current_device``, ``set_device``, ``synchronize``, ``get_device_name``) raise, as there,
with a message that says deepbox runs on the CPU.
"""
from __future__ import annotations

from deepbox.cuda import amp  # noqa: F401

_NO_CUDA = ("deepbox runs on the CPU only (it is not compiled with CUDA): guard GPU-only calls with "
            "`if deepbox.cuda.is_available():`")


def _refuse(*args, **kwargs):
    raise AssertionError(_NO_CUDA)


def is_available() -> bool:
    return False


def is_initialized() -> bool:
    return False


def device_count() -> int:
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Accepted: there is no CUDA generator to seed (PyTorch silently ignores it without CUDA)."""


def manual_seed_all(seed: int) -> None:
    """Accepted: there is no CUDA generator to seed."""


def empty_cache() -> None:
    """Nothing to release: deepbox holds no GPU memory."""


def memory_allocated(device=None) -> int:
    return 0


def max_memory_allocated(device=None) -> int:
    return 0


def memory_reserved(device=None) -> int:
    return 0


def max_memory_reserved(device=None) -> int:
    return 0


def reset_peak_memory_stats(device=None) -> None:
    """Nothing to reset: no GPU memory is tracked."""


current_device = _refuse
set_device = _refuse
synchronize = _refuse
get_device_name = _refuse
get_device_properties = _refuse
get_device_capability = _refuse

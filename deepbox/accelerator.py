"""``deepbox.accelerator``: PyTorch's device-agnostic accelerator API, answering "none" on the CPU.

Programs written against ``torch.accelerator`` (``device = torch.accelerator.current_accelerator()
if torch.accelerator.is_available() else "cpu"``) take their CPU path unchanged.
"""
from __future__ import annotations


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False):
    """None: deepbox has no accelerator (PyTorch's CPU-only build answers the same)."""
    return None


def device_count() -> int:
    return 0


def _no_accelerator(*args, **kwargs):
    raise RuntimeError("deepbox runs on the CPU only: there is no accelerator "
                       "(check deepbox.accelerator.is_available() first)")


# every query about "the" accelerator raises, as in PyTorch without one
current_device_index = current_device_idx = _no_accelerator
set_device_index = set_device_idx = _no_accelerator
synchronize = empty_cache = _no_accelerator
memory_allocated = max_memory_allocated = memory_reserved = max_memory_reserved = _no_accelerator
reset_peak_memory_stats = memory_stats = _no_accelerator

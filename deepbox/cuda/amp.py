"""``deepbox.cuda.amp``: PyTorch's older spelling of ``deepbox.amp`` for CUDA (deprecated there too)."""
from __future__ import annotations

import functools

from deepbox import amp as _amp


class autocast(_amp.autocast):  # noqa: N801 - PyTorch's name
    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True):
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


@functools.wraps(_amp.GradScaler)
def GradScaler(init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,  # noqa: N802
               growth_interval: int = 2000, enabled: bool = True):
    return _amp.GradScaler("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)

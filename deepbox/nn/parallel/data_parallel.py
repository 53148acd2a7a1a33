"""``nn.DataParallel``: PyTorch's single-process, multi-GPU wrapper, which on a machine without GPUs
(always, for deepbox) simply runs the wrapped module, as PyTorch does when no device is available.

Code written as ``model = nn.DataParallel(model)`` keeps working, and its state dict keeps the
``module.`` prefix, so checkpoints move between the two. For real data parallelism across
processes or machines, use ``DistributedDataParallel`` (deepbox's runs on MPI).
"""
from __future__ import annotations

from deepbox.nn.modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Run ``module`` on the CPU; ``device_ids``, ``output_device`` and ``dim`` are accepted for portability."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel expects a Module, got {type(module).__name__}")
        self.module = module
        self.device_ids = []
        self.output_device = None
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

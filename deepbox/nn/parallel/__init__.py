"""``deepbox.nn.parallel``: ``DistributedDataParallel`` (data parallelism over MPI ranks) and the
single-process ``DataParallel`` (on the CPU it runs the module, as PyTorch does without GPUs)."""
from deepbox.nn.parallel.data_parallel import DataParallel  # noqa: F401
from deepbox.nn.parallel.distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DataParallel", "DistributedDataParallel"]

"""``deepbox.nn.parallel``: ``DistributedDataParallel`` (data parallelism over MPI ranks)."""
from deepbox.nn.parallel.distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DistributedDataParallel"]

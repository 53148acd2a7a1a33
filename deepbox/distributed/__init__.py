"""``deepbox.distributed``: ``torch.distributed``'s API for data-parallel training, on MPI (mpi4py).

Start N processes with ``deepbox launch --nproc N script.py`` (or ``mpirun -np N python script.py``);
each calls ``init_process_group(backend="mpi")`` and is then one rank of the job. See
``docs/distributed.md`` for the design and ``deepbox.nn.parallel.DistributedDataParallel`` for
training with it.
"""
from __future__ import annotations

from deepbox.distributed.collectives import (  # noqa: F401
    Work,
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    gather,
    new_group,
    reduce,
    reduce_scatter_tensor,
    scatter,
)
from deepbox.distributed.objects import all_gather_object, broadcast_object_list  # noqa: F401
from deepbox.distributed.process_group import (  # noqa: F401
    DistBackendError,
    DistError,
    ProcessGroup,
    ReduceOp,
    destroy_process_group,
    get_backend,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
)

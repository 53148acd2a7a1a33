"""A job in which rank 1 raises (or is killed) while rank 0 waits in an all_reduce: the job must stop, naming rank 1."""
from __future__ import annotations

import os
import signal
import sys

import deepbox
import deepbox.distributed as dist

dist.init_process_group("mpi")
if dist.get_rank() == 1 and sys.argv[1:] == ["raise"]:
    raise ValueError("rank one fails on purpose")
if dist.get_rank() == 1 and sys.argv[1:] == ["kill"]:
    os.kill(os.getpid(), signal.SIGKILL)
x = deepbox.ones(3)
dist.all_reduce(x)        # rank 0 waits here for a rank that will never come
print("rank", dist.get_rank(), "finished", x.tolist(), flush=True)

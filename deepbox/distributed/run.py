"""One rank of a ``deepbox launch`` job: set torchrun's variables from MPI's, then run the script.

``mpirun`` tells each process its place through its own variables (Open MPI's
``OMPI_COMM_WORLD_RANK``, MPICH's ``PMI_RANK``, ...); PyTorch scripts read torchrun's ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` and ``LOCAL_WORLD_SIZE``. This module sets the latter from the former
(without importing MPI, which the script's ``init_process_group`` does) and runs the script as
``__main__``, so ``python -m deepbox.distributed.run script.py ARGS`` under ``mpirun`` behaves like
``torchrun`` running ``script.py ARGS``.
"""
from __future__ import annotations

import os
import runpy
import sys

# (torchrun's name, the launchers' names for it, in order of preference)
_VARS = (
    ("RANK", ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID")),
    ("WORLD_SIZE", ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_NTASKS")),
    ("LOCAL_RANK", ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")),
    ("LOCAL_WORLD_SIZE", ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE")),
)


def set_torchrun_env(environ=os.environ) -> None:
    """Fill ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE`` from the MPI launcher's variables."""
    for name, sources in _VARS:
        for src in sources:
            if environ.get(src):
                environ[name] = environ[src]
                break
    environ.setdefault("LOCAL_RANK", environ.get("RANK", "0"))
    environ.setdefault("LOCAL_WORLD_SIZE", environ.get("WORLD_SIZE", "1"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m deepbox.distributed.run script.py [ARGS] (under mpirun)")
    set_torchrun_env()
    if argv[0] == "-m":
        if len(argv) < 2:
            raise SystemExit("usage: python -m deepbox.distributed.run -m module [ARGS]")
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return
    script = argv[0]
    if not os.path.exists(script):
        raise SystemExit(f"deepbox launch: no such script: {script}")
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()

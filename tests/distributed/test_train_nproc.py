"""``deepbox train --nproc 2``: the same run folder as one process, written by rank 0; resume on 2 ranks or 1."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.distributed.mpi_jobs import ROOT, require_mpi

ARGS = ["--model", "mlp", "--limit-train", "256", "--limit-test", "100", "--batch-size", "64", "-q"]


def _deepbox(args, cwd, timeout=240):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTEST_XDIST_WORKER", None)
    env["OMP_NUM_THREADS"] = "1"
    p = subprocess.run([sys.executable, "-m", "deepbox"] + args, capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=timeout)
    return p


def test_train_on_two_processes_then_resume(tmp_path):
    require_mpi()
    from safetensors.numpy import load_file

    p = _deepbox(["train", "--nproc", "2", "--epochs", "1", "--out", "dp"] + ARGS, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "data-parallel on 2 processes: 32 images per process per step" in p.stdout
    assert p.stdout.count("test accuracy:") == 1          # rank 0 alone reports
    run = tmp_path / "dp"
    for name in ("checkpoint.safetensors", "config.json", "history.csv", "history.json", "results.json"):
        assert (run / name).is_file(), name
    res = json.loads((run / "results.json").read_text())
    assert res["epochs"] == 1 and res["test_size"] == 100 and 0 <= res["test_accuracy"] <= 1
    # the checkpoint holds the plain model (no DDP 'module.' prefix): one process evaluates it
    keys = [k for k in load_file(str(run / "checkpoint.safetensors")) if "model" in k]
    assert keys and not any(".module." in k for k in keys), keys
    p = _deepbox(["eval", "dp", "--limit-test", "100"], tmp_path)
    assert p.returncode == 0, p.stderr
    # every rank resumes from rank 0's checkpoint
    p = _deepbox(["train", "--resume", "dp", "--epochs", "2", "--nproc", "2", "-q"], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    hist = json.loads((run / "history.json").read_text())
    assert hist["epochs"] == 2 and len(hist["history"]["loss"]) == 2
    assert json.loads((run / "results.json").read_text())["epochs"] == 2


def test_bad_nproc_input_is_reported_once(tmp_path):
    p = _deepbox(["train", "--nproc", "2", "--batch-size", "63", "--epochs", "1", "--out", "x"] + ARGS[:-3],
                 tmp_path)
    assert p.returncode == 2 and "must divide evenly over --nproc 2" in p.stderr, p.stderr
    p = _deepbox(["train", "--nproc", "0"], tmp_path)
    assert p.returncode == 2 and "--nproc must be a positive" in p.stderr, p.stderr
    p = _deepbox(["train", "--hostfile", "hosts"], tmp_path)
    assert p.returncode == 2 and "pass --nproc too" in p.stderr, p.stderr
    # --nproc 1 outside an MPI job is the one-process run, where a hostfile has nothing to spread
    p = _deepbox(["train", "--nproc", "1", "--hostfile", "hosts"], tmp_path)
    assert p.returncode == 2 and "pass --nproc too" in p.stderr, p.stderr


def test_one_process_needs_no_launcher(monkeypatch):
    from deepbox.cli.train_dist import runs_in_one_process

    for var in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    assert runs_in_one_process(1) and not runs_in_one_process(2)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")      # a rank of a one-process MPI job: the launched path
    assert not runs_in_one_process(1)


def test_an_existing_run_folder_stops_every_rank(tmp_path):
    require_mpi()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "checkpoint.safetensors").write_bytes(b"x")
    p = _deepbox(["train", "--nproc", "2", "--epochs", "1", "--out", "taken"] + ARGS, tmp_path, timeout=120)
    assert p.returncode != 0
    assert "already holds a run" in p.stderr and "rank 0" in p.stderr, p.stderr

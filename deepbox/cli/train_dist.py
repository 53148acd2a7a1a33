"""``deepbox train --nproc N``: the same training run on N processes, data-parallel.

Called without a launcher, it starts ``N`` copies of itself under ``deepbox launch`` (mpirun, one
BLAS/kernel thread per rank) and returns their exit status. In each rank it runs the steps of
``deepbox train`` (``deepbox/cli/train.py``) with four changes:

* the model's batch norms become ``SyncBatchNorm`` and the model is wrapped in
  ``DistributedDataParallel``, so one step on N ranks of ``batch_size / N`` images each is the
  step of one process on ``batch_size`` images (same learning rate);
* the training set is shared out by a ``DistributedSampler`` (seeded by ``--seed``, reshuffled per
  epoch); the validation and test sets are split into disjoint strided shares, and the Trainer
  sums losses and metric counts over the ranks, so the reported numbers are those of the whole set;
* rank 0 alone prints, writes the run folder (the same files as a one-process run; the checkpoint
  holds the plain model, so ``deepbox eval``, ``predict`` and ``--resume`` work with or without
  ``--nproc``), and every rank reads the checkpoint on ``--resume``;
* an error on any rank stops the whole job (exit status 1, or 2 for bad input) with a message that
  names the rank.
"""
from __future__ import annotations

import os
import sys

from deepbox.cli.common import CLIError, write_json

__all__ = ["cmd_train_nproc", "runs_in_one_process"]


def _launched_world() -> int | None:
    """The world size when this process is a rank of an MPI job, else None."""
    from deepbox.distributed.run import set_torchrun_env

    env = dict(os.environ)
    set_torchrun_env(env)
    ws = env.get("WORLD_SIZE")
    return int(ws) if ws else None


def runs_in_one_process(nproc: int) -> bool:
    """True for ``--nproc 1`` outside an MPI job: the ordinary one-process run, with no launcher."""
    return nproc == 1 and _launched_world() is None


def cmd_train_nproc(args) -> int:
    """``deepbox train --nproc N`` (where ``runs_in_one_process`` is False): relaunch N ranks, or be one of them."""
    from deepbox.cli.train_steps import train_config

    nproc = args.nproc
    if nproc < 1:
        raise CLIError(f"--nproc must be a positive number of processes, got {nproc}")
    world = _launched_world()
    if world is None:
        cfg, _ = train_config(args)                 # bad options are reported once, here
        _check_batch(cfg, nproc)
        return _relaunch(args, nproc)
    if world != nproc:
        raise CLIError(f"--nproc {nproc}, but this process is one of {world} ranks started by an MPI launcher")
    cfg, resume = train_config(args)
    _check_batch(cfg, nproc)
    import deepbox.distributed as dist

    dist.init_process_group("mpi")
    try:
        code = _train_rank(args, cfg, resume)
    except BaseException as e:   # noqa: BLE001 - any failure on one rank must stop every rank
        from deepbox.distributed.process_group import abort_job

        bad_input = isinstance(e, CLIError) or type(e).__name__ == "ConfigError"
        print(f"deepbox train: rank {dist.get_rank()}: {'error' if bad_input else type(e).__name__}: "
              f"{' '.join(str(e).split())}", file=sys.stderr, flush=True)
        abort_job(e, code=2 if bad_input else 1)
    dist.destroy_process_group()
    return code


def _check_batch(cfg, nproc: int) -> None:
    if cfg.batch_size % nproc:
        raise CLIError(f"--batch-size {cfg.batch_size} must divide evenly over --nproc {nproc} processes "
                       f"(each trains on batch-size / nproc images per step)")


def _relaunch(args, nproc: int) -> int:
    import subprocess

    from deepbox.distributed.launch import LaunchError, build_command

    try:
        cmd, env = build_command(nproc, ["-m", "deepbox"] + list(args.argv), hostfile=getattr(args, "hostfile", None))
    except LaunchError as e:
        raise CLIError(str(e)) from None
    return subprocess.call(cmd, env=env)


def _on_rank0(fn):
    """Run ``fn`` on rank 0 and give its result (or its CLIError) to every rank."""
    import deepbox.distributed as dist

    box = [None, None]
    if dist.get_rank() == 0:
        try:
            box[0] = fn()
        except CLIError as e:
            box[1] = str(e)
    dist.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise CLIError(box[1])
    return box[0]


def _shard_loaders(prep, cfg, rank: int, world: int):
    """Training batches from a DistributedSampler; validation and test sets split into strided shares."""
    from deepbox.cli.train_steps import EVAL_BATCH
    from deepbox.data import DataLoader, DistributedSampler, Subset

    train_ds = prep.train_loader.dataset
    prep.train_loader = DataLoader(train_ds, batch_size=cfg.batch_size // world,
                                   sampler=DistributedSampler(train_ds, world, rank, shuffle=True, seed=cfg.seed),
                                   num_workers=cfg.workers, persistent_workers=False)  # see prepare_data

    def share(loader):
        ds = loader.dataset
        return DataLoader(Subset(ds, list(range(rank, len(ds), world))), batch_size=EVAL_BATCH)

    same = prep.monitor_loader is prep.test_loader
    prep.test_loader = share(prep.test_loader)
    prep.monitor_loader = prep.test_loader if same else share(prep.monitor_loader)


def _train_rank(args, cfg, resume) -> int:
    import time

    import deepbox.distributed as dist
    from deepbox import nn
    from deepbox.cli.common import TRAINABLE_TASKS, model_entry
    from deepbox.cli.train_steps import (
        _announce,
        _check_same_run,
        _first_segment,
        _output_folder,
        _resume,
        build_trainer,
        prepare_data,
        schedule_interval,
        write_report,
    )
    from deepbox.nn.parallel import DistributedDataParallel

    rank, world = dist.get_rank(), dist.get_world_size()
    task = model_entry(cfg.model)["task"]
    if task not in TRAINABLE_TASKS:
        raise CLIError(f"model {cfg.model!r} is a {task} model; 'deepbox train --nproc' trains image classifiers")
    out = _on_rank0(lambda: _output_folder(cfg, args, resume))
    prep = prepare_data(cfg)
    if resume:
        _check_same_run(prep.run_cfg, resume)
    _shard_loaders(prep, cfg, rank, world)
    verbose = 0 if args.quiet else 1
    trainer = build_trainer(cfg, prep, out, verbose=verbose, interval=schedule_interval(resume))
    model = nn.SyncBatchNorm.convert_sync_batchnorm(trainer.model)
    trainer.model = DistributedDataParallel(model)
    segment = _resume(trainer, cfg, prep, resume) if resume else _first_segment(cfg, prep.run_cfg)
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "config.json"), prep.run_cfg)
        _announce(cfg, prep, trainer, out, resume, segment)
        print(f"data-parallel on {world} processes: {cfg.batch_size // world} images per process per step",
              flush=True)
    t0 = time.perf_counter()
    history = trainer.fit(prep.train_loader, prep.monitor_loader, epochs=cfg.epochs)
    write_report(cfg, prep, trainer, out, history, time.perf_counter() - t0)
    return 0

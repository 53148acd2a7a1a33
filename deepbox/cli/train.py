"""``deepbox train``: train an image classifier and write a run folder.

``deepbox train`` with no arguments trains the default model on the Fashion-MNIST subset that
ships with deepbox and writes a run folder (``runs/<date>-<time>-<model>/``) holding:

* ``checkpoint.safetensors``: the whole training state (``deepbox.save``), with the run's
  configuration inside it, so that the model can be rebuilt from this one file;
* ``config.json``: that configuration (model name and arguments, classes, input size,
  normalisation), for people;
* ``history.csv``, ``history.json``: loss and accuracy per epoch;
* ``curves.png``, ``confusion_matrix.png``, ``predictions.png`` (and ``filters.png`` when the
  model starts with a convolution);
* ``results.json``: the final test loss and accuracy;
* with ``--inspect``, ``inspect/``: the recorder's files (``deepbox.inspect``), served live as a
  page while training and afterwards by ``deepbox inspect RUN``.

The command is four steps, each a function of ``train_steps.py``: ``train_config`` (defaults, the resumed
run, a file and flags), ``prepare_data`` (load, split, normalise, augment, loaders),
``build_trainer`` (model, optimiser, schedule, callbacks; restored from the checkpoint on
``--resume``) and ``write_report`` (results, pictures). Language models go to ``train_lm``,
``--nproc N`` to ``train_dist``.
"""
from __future__ import annotations

import argparse
import os
import time

from deepbox.cli.common import TRAINABLE_TASKS, CLIError, model_entry, say, write_json
from deepbox.cli.config import OPTIMIZERS, SCHEDULERS
from deepbox.cli.inspect_cmd import DEFAULT_PORT, HOST_HELP, announce, start_server
from deepbox.cli.train_steps import (
    PreparedData,
    _after_failure,
    _announce,
    _check_libraries,
    _check_same_run,
    _first_segment,
    _make_folder,
    _output_folder,
    _resume,
    augmentation,
    build_trainer,
    prepare_data,
    schedule_interval,
    train_config,
    write_report,
)

__all__ = ["add_parsers", "cmd_train", "train_config", "prepare_data", "build_trainer", "write_report",
           "augmentation"]


def add_parsers(sub, common) -> None:
    t = sub.add_parser("train", parents=[common], help="train a model and write a run folder",
                       description="Train an image classifier (default: convnet on the embedded Fashion-MNIST "
                                   "subset) and write a run folder with the checkpoint, history and plots.")
    t.add_argument("--model", help="a model of the zoo (see 'deepbox models'); default convnet")
    t.add_argument("--data", help="a dataset name (see 'deepbox datasets') or a path to a .npz file or folder; "
                                  "default fashion-mnist-small")
    t.add_argument("--epochs", type=int, help="epochs in all (default 5)")
    t.add_argument("--batch-size", type=int, help="samples per batch (default 64)")
    t.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    t.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} (default adam)")
    t.add_argument("--weight-decay", type=float, help="L2 weight decay (default 0)")
    t.add_argument("--momentum", type=float, help="momentum for sgd/rmsprop (default 0.9)")
    t.add_argument("--scheduler", help=f"learning-rate schedule: {' or '.join(SCHEDULERS)} (default cosine: from --lr "
                                       "down to 0 over the epochs, stepped after every batch)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (and left-right flips for clothing/CIFAR)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    t.add_argument("--val-split", type=float,
                   help="hold out this fraction of the training set for validation (default 0: the test set is "
                        "evaluated after every epoch, for the curves only)")
    t.add_argument("--limit-train", type=int, help="use only the first N training images")
    t.add_argument("--limit-test", type=int, help="use only the first N test images")
    t.add_argument("--config", help="a YAML or JSON file with any of the options above (flags win)")
    t.add_argument("--out", help="the run folder (default runs/<date>-<time>-<model>)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its checkpoint")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-epoch lines")
    t.add_argument("--nproc", type=int, help="train data-parallel on N processes (deepbox launch; one thread each): "
                                             "the same run folder as one process, written by rank 0")
    t.add_argument("--inspect", action="store_true",
                   help="record inside the model (deepbox.inspect) and serve the live page while training; "
                        "'deepbox inspect RUN' shows it again later")
    t.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"the inspector page's port with --inspect (default {DEFAULT_PORT}; 0 picks a free one)")
    t.add_argument("--host", default="127.0.0.1", help="with --inspect, " + HOST_HELP)
    t.add_argument("--inspect-every", type=int, default=50, metavar="N",
                   help="with --inspect, record one optimiser step in N (default 50)")
    t.add_argument("--hostfile", help="with --nproc: an MPI hostfile, to spread the processes over machines "
                                      "(docs/distributed.md)")
    t.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    if getattr(args, "nproc", None) is not None:
        from deepbox.cli.train_dist import cmd_train_nproc, runs_in_one_process

        if args.inspect:
            raise CLIError("--inspect records one process; it does not combine with --nproc (in your own data-parallel "
                           "script, call deepbox.inspect.watch on rank 0)")
        if not runs_in_one_process(args.nproc):
            return cmd_train_nproc(args)
        args.nproc = None       # --nproc 1 outside an MPI job: the one-process run below
    if getattr(args, "hostfile", None) and getattr(args, "nproc", None) is None:
        raise CLIError("--hostfile spreads the processes of --nproc N over machines; pass --nproc too")
    _check_libraries()
    cfg, resume = train_config(args)
    task = model_entry(cfg.model)["task"]
    if task == "language-model":
        from deepbox.cli.train_lm import train_language_model

        if args.inspect:
            raise CLIError("--inspect records image classifiers; for a language model use deepbox.inspect.watch "
                           "in your own loop")
        return train_language_model(cfg, args, resume.folder if resume else None)
    if task not in TRAINABLE_TASKS:
        raise CLIError(f"model {cfg.model!r} is a {task} model; 'deepbox train' trains image classifiers "
                       "(see 'deepbox models' for their names)")
    out = _output_folder(cfg, args, resume)
    prep = prepare_data(cfg)
    if resume:
        _check_same_run(prep.run_cfg, resume)
    trainer = build_trainer(cfg, prep, out, verbose=0 if args.quiet else 1, interval=schedule_interval(resume))
    segment = _resume(trainer, cfg, prep, resume) if resume else _first_segment(cfg, prep.run_cfg)
    created = _make_folder(out)
    server = None
    try:
        server = _inspect(trainer, prep, out, args) if args.inspect else None
        write_json(os.path.join(out, "config.json"), prep.run_cfg)
        _announce(cfg, prep, trainer, out, resume, segment)
        if server is not None:
            announce(server)
        t0 = time.perf_counter()
        try:
            history = trainer.fit(prep.train_loader, prep.monitor_loader, epochs=cfg.epochs)
        finally:
            if server is not None:
                server.stop()
        write_report(cfg, prep, trainer, out, history, time.perf_counter() - t0)
    except BaseException:
        _after_failure(out, created)
        raise
    if server is not None:
        say(f"inspector: training finished; 'deepbox inspect {out}' shows the page again")
    return 0


def _inspect(trainer, prep: PreparedData, out: str, args):
    """Add the recorder to the trainer and start the page's server (before training: a taken port stops here)."""
    from deepbox.inspect import Inspector

    if args.inspect_every < 1:
        raise CLIError(f"--inspect-every must be a positive integer, got {args.inspect_every}")
    server = start_server(out, args.host, args.port, live=True)
    trainer.callbacks.append(Inspector(out, every=args.inspect_every, data=(prep.x_test, prep.data.y_test),
                                       classes=prep.data.classes))
    trainer.callbacks.sort(key=lambda c: c.order)
    server.start()
    return server

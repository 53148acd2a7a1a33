"""What the ``deepbox`` sub-commands share: the error type, printing, and reading a run folder."""
from __future__ import annotations

import json
import os
import time

__all__ = ["CLIError", "CHECKPOINT_NAME", "TRAINABLE_TASKS", "say", "write_json", "duration", "model_entry",
           "build_model", "model_kwargs", "load_data", "new_run_folder", "read_run", "restore_model"]

CHECKPOINT_NAME = "checkpoint.safetensors"
TRAINABLE_TASKS = ("image-classification", "sequence-classification")


class CLIError(Exception):
    """Bad input: printed as one paragraph, exit status 2."""


def say(text: str = "") -> None:
    print(text, flush=True)


def write_json(path: str, doc) -> None:
    from deepbox.train.callbacks import _write_atomic

    _write_atomic(path, json.dumps(doc, indent=1) + "\n")


def duration(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {s % 60:04.1f} s"


def model_entry(name: str) -> dict:
    from deepbox.models import list_models, model_info

    try:
        return model_info(name)
    except KeyError:
        raise CLIError(f"unknown model {name!r}; expected one of {', '.join(list_models())} "
                       "(see 'deepbox models')") from None


def build_model(name: str, kwargs: dict):
    from deepbox.models import get_model

    try:
        return get_model(name, **kwargs)
    except (TypeError, ValueError) as e:
        raise CLIError(f"model {name!r} cannot be built with {kwargs}: {e}") from None


def model_kwargs(name: str, in_channels: int, num_classes: int, image_size: int) -> dict:
    """The arguments of zoo model ``name`` for images of this shape and this many classes."""
    import inspect

    builder = model_entry(name)["builder"]
    params = inspect.signature(builder).parameters
    kw = {"in_channels": in_channels, "num_classes": num_classes}
    if "image_size" in params:
        kw["image_size"] = image_size
    return {k: v for k, v in kw.items() if k in params or any(p.kind == p.VAR_KEYWORD for p in params.values())}


def load_data(name: str, limit_train=None, limit_test=None):
    from deepbox.cli.data import load_image_data

    try:
        return load_image_data(name, limit_train, limit_test)
    except (ValueError, OSError, KeyError) as e:
        # unknown names, missing files, corrupt IDX/npz/image files: the loaders' messages name the file
        msg = str(e).strip("'\"")
        if msg.startswith("unknown dataset"):
            raise CLIError(msg) from None
        raise CLIError(f"dataset {name!r} cannot be loaded: {msg}") from None


def new_run_folder(model: str) -> str:
    """``runs/<date>-<time>-<model>``, numbered if it exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join("runs", f"{stamp}-{model}")
    path, n = base, 2
    while os.path.exists(path):
        path, n = f"{base}-{n}", n + 1
    return path


def read_run(run: str) -> tuple[dict, str, dict]:
    """The run's configuration, checkpoint path and checkpoint, or a CLIError saying what is missing."""
    if not os.path.isdir(run):
        raise CLIError(f"run folder {run!r} does not exist; expected a folder written by 'deepbox train'")
    ckpt = os.path.join(run, CHECKPOINT_NAME)
    if not os.path.isfile(ckpt):
        raise CLIError(f"run folder {run!r} holds no checkpoint ({CHECKPOINT_NAME}); expected a folder written by "
                       "'deepbox train' that finished at least one epoch")
    from deepbox.io import CheckpointError, load

    try:
        state = load(ckpt)
    except (CheckpointError, OSError, ValueError) as e:
        raise CLIError(f"checkpoint {ckpt} cannot be read: {e}") from None
    run_cfg = state.get("extra") if isinstance(state, dict) else None
    if not isinstance(run_cfg, dict) or "model" not in run_cfg or "train" not in run_cfg:
        raise CLIError(f"checkpoint {ckpt} has no run configuration; expected a checkpoint written by 'deepbox train'")
    return run_cfg, ckpt, state


def restore_model(run: str):
    """The trained image classifier of run folder ``run`` in eval mode, and the run's configuration."""
    run_cfg, ckpt, state = read_run(run)
    if run_cfg.get("task") == "language-model":
        raise CLIError(f"{run} holds a language model ({run_cfg['model']['name']}); 'deepbox eval' and "
                       "'deepbox predict' work on image classifiers (its bits per character are in results.json)")
    model = build_model(run_cfg["model"]["name"], run_cfg["model"]["kwargs"])
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CLIError(f"checkpoint {ckpt} does not fit model {run_cfg['model']['name']!r}: {e}") from None
    model.eval()
    return model, run_cfg

"""``deepbox models``, ``deepbox datasets``, ``deepbox info``: what is there to use."""
from __future__ import annotations

import os
import sys

import numpy as np

from deepbox.cli.common import TRAINABLE_TASKS, say

__all__ = ["add_parsers", "cmd_models", "cmd_datasets", "cmd_info"]


def add_parsers(sub, common) -> None:
    m = sub.add_parser("models", parents=[common], help="list the model zoo with parameter counts")
    m.set_defaults(func=cmd_models)
    d = sub.add_parser("datasets", parents=[common], help="list the datasets and where they were found")
    d.set_defaults(func=cmd_datasets)
    i = sub.add_parser("info", parents=[common], help="versions, threads and BLAS")
    i.set_defaults(func=cmd_info)


def cmd_models(args) -> int:
    from deepbox.models import get_model, list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        try:
            kw = {"in_channels": 1, "num_classes": 10} if info["task"] in TRAINABLE_TASKS else {}
            model = get_model(name, **kw)
            count = f"{sum(p.numel() for p in model.parameters()):,}"
        except Exception:
            count = "?"
        rows.append((name, info["task"], count, info.get("summary", "")))
    _table(("model", "task", "parameters", "description"), rows, right={2})
    say("\nparameters: for 1-channel 28x28 inputs and 10 classes (image models), or the default arguments; "
         "'deepbox train --model NAME' trains the image and sequence classifiers")
    return 0


def cmd_datasets(args) -> int:
    from deepbox.vision.datasets import available_datasets

    rows = []
    for d in available_datasets():
        sizes = f"{d['train_size']:,} / {d['test_size']:,}" if d.get("train_size") else "-"
        rows.append((d["name"], "yes" if d["available"] else "no", sizes, d.get("where") or "not found",
                     d.get("description", "")))
    _table(("dataset", "available", "train / test", "where", "description"), rows)
    say("\nalso: --data PATH for a .npz file (x_train/y_train/x_test/y_test or images/labels), a folder with the "
         "four IDX files, or a folder of class folders of images; set $DEEPBOX_DATA to add a search folder")
    return 0


def cmd_info(args) -> int:
    import platform

    import deepbox

    say(f"deepbox     {deepbox.__version__} ({os.path.dirname(os.path.abspath(deepbox.__file__))})")
    say(f"python      {platform.python_version()} ({platform.python_implementation()}, {sys.platform})")
    say(f"numpy       {np.__version__}")
    say(f"cpus        {os.cpu_count()}")
    say(f"threads     {deepbox.get_num_threads()} (BLAS)")
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            say(f"blas        {lib.get('internal_api')} {lib.get('version')} ({lib.get('user_api')}, "
                f"{lib.get('num_threads')} threads, {lib.get('architecture') or '-'}) {lib.get('filepath', '')}")
    except ImportError:
        say("blas        (install threadpoolctl to see which BLAS runs)")
    from importlib import metadata

    # versions from the installed metadata: importing matplotlib or optuna only to ask would take seconds
    for dist, extra in (("safetensors", None), ("tqdm", None), ("matplotlib", None), ("pillow", None),
                        ("pyyaml", None), ("tensorboardX", "tensorboard"), ("optuna", "tune"), ("numba", "fast")):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = f"not installed (pip install {dist if extra is None else repr(f'deepbox[{extra}]')})"
        say(f"{dist:<11} {version}")
    from deepbox import kernels

    if kernels.enabled():
        say(f"kernels     compiled (numba): convolution parts, pooling, normalisation, activations, "
            f"LSTM cells; {kernels.num_threads()} threads")
    else:
        why = "DEEPBOX_NUMBA=0" if os.environ.get("DEEPBOX_NUMBA") == "0" else "numba not installed"
        say(f"kernels     NumPy only ({why}); pip install 'deepbox[fast]' for the compiled ones")
    from deepbox import backend

    if backend.allocator_tuned:
        say("allocator   freed arrays kept for reuse (glibc mallopt; DEEPBOX_MALLOC=0 turns it off)")
    else:
        say("allocator   the C library's default (DEEPBOX_MALLOC=0, or not glibc)")
    return 0


def _table(header: tuple, rows: list[tuple], right: set[int] | None = None) -> None:
    right = right or set()
    cols = list(zip(header, *rows)) if rows else [(h,) for h in header]
    widths = [max(len(str(v)) for v in col) for col in cols]

    def fmt(row):
        cells = [str(v).rjust(wd) if i in right else str(v).ljust(wd) for i, (v, wd) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    say(fmt(header))
    say(fmt(tuple("-" * wd for wd in widths)))
    for r in rows:
        say(fmt(r))

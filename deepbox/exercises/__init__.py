"""Exercise mode: the student writes one piece of deepbox, deepbox checks it, then trains with it.

    deepbox exercise list                       # name, lecture, summary, status in this folder
    deepbox exercise start conv2d [--dir D]     # writes D/conv2d.py (the template) and prints the statement
    deepbox exercise check conv2d [--dir D]     # exit 0 when every check passes, 1 otherwise
    deepbox exercise check conv2d --train       # the student's conv2d inside LeNet-5 on MNIST digits
    deepbox exercise solution conv2d [--dir D]  # the reference solution (teacher mode)
    deepbox exercise show conv2d                # the statement

From Python::

    import deepbox.exercises as ex
    report = ex.check("conv2d", "conv2d.py")    # prints the report; report.passed
    with ex.use("conv2d", "conv2d.py"):         # nn.Conv2d and F.conv2d now run the student's code
        ...

Every exercise is a folder of this package (``statement.md``, ``solution.py``, checks in
``__init__.py``); the template is the solution with the student's blocks emptied (``base.py``).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Report

__all__ = ["NAMES", "Exercise", "Part", "Report", "get", "exercises", "check", "use", "start", "solution",
           "show", "status",
           "student_path"]

# in the order of the course
NAMES = ("linear_regression", "knn", "softmax_cross_entropy", "gradcheck", "linear", "relu", "sigmoid",
         "sgd_momentum", "adam", "dropout", "batchnorm", "conv2d", "maxpool2d", "rnn_cell", "lstm_cell",
         "attention")
_STATUS_FILE = ".deepbox-exercises.json"


def _available() -> tuple:
    here = os.path.dirname(os.path.abspath(__file__))
    return tuple(n for n in NAMES if os.path.isfile(os.path.join(here, n, "__init__.py")))


def get(name: str) -> Exercise:
    """The exercise called ``name`` (``ValueError`` naming the exercises there are)."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in _available():
        raise ValueError(f"no exercise called {name!r}; the exercises are: {', '.join(_available())}")
    return importlib.import_module(f"deepbox.exercises.{key}").EXERCISE


def exercises() -> list:
    """Every exercise, in the order of the course."""
    return [get(n) for n in _available()]


def show(name: str) -> str:
    """The statement of an exercise (Markdown)."""
    return get(name).statement


def student_path(name: str, path=None, dir=".") -> str:
    """The student's file: ``path``, else ``dir/NAME.py``, else ``dir/NAME.ipynb`` when only the notebook exists."""
    if path is not None:
        return os.fspath(path)
    py = os.path.join(os.fspath(dir), f"{get(name).name}.py")
    nb = py[:-3] + ".ipynb"
    return nb if not os.path.isfile(py) and os.path.isfile(nb) else py


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _write_new(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def start(name: str, dir=".", notebook: bool = False, overwrite: bool = False) -> str:
    """Write the template to ``dir/NAME.py`` (or ``dir/NAME.ipynb``); return its path.

    An existing file is kept (``FileExistsError``) unless ``overwrite``: it may hold the student's work.
    """
    ex = get(name)
    os.makedirs(dir, exist_ok=True)
    path = os.path.join(os.fspath(dir), f"{ex.name}.{'ipynb' if notebook else 'py'}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (your work?); delete it or pass overwrite=True (--force) to start over")
    if notebook:
        from deepbox.exercises.notebook import notebook_json

        _write_new(path, notebook_json(ex, ex.template_source))
    else:
        _write_new(path, ex.template_source)
    return path


def solution(name: str, dir=".", notebook: bool = False, overwrite: bool = False) -> str:
    """Teacher mode: write the reference solution to ``dir/NAME.py`` (or ``.ipynb``); return its path.

    A file that differs from the untouched template is kept (``FileExistsError``) unless ``overwrite``.
    """
    ex = get(name)
    os.makedirs(dir, exist_ok=True)
    path = os.path.join(os.fspath(dir), f"{ex.name}.{'ipynb' if notebook else 'py'}")
    if os.path.exists(path) and not overwrite:
        with open(path, encoding="utf-8") as f:
            current = f.read()
        untouched = ex.template_source if not notebook else None
        if current != untouched:
            raise FileExistsError(f"{path} holds work that is not the untouched template; pass overwrite=True "
                                  "(--force) to replace it with the solution")
    text = ex.solution_source
    if notebook:
        from deepbox.exercises.notebook import notebook_json

        _write_new(path, notebook_json(ex, text))
    else:
        _write_new(path, f"# The reference solution of the deepbox exercise '{ex.name}' (teacher mode).\n" + text)
    return path


def check(name: str, path=None, *, dir=".", train: bool = False, train_size: int | None = None,
          epochs: int | None = None, verbose: bool = True) -> Report:
    """Run the exercise's checks on the student's code and print what they found.

    Args:
        name: the exercise.
        path: the student's file (default ``dir/NAME.py``), or a namespace dict (a notebook's ``globals()``).
        train: also train a small real model with the student's piece and the reference (when the checks pass).
        train_size, epochs: the training run's number of training examples and epochs (see ``--train``).
        verbose: print the report (it is returned either way; ``report.passed``, ``report.text``).
    """
    ex = get(name)
    source = path if isinstance(path, dict) else student_path(name, path, dir)
    report = ex.check(source)
    if verbose:
        print(report.text, flush=True)
    here = os.path.dirname(os.path.abspath(__file__))
    if isinstance(source, str) and os.path.isfile(source) and not os.path.abspath(source).startswith(here):
        _record(source, ex.name, report.passed)
    if train:
        from deepbox.exercises.training import train_report

        rows = train_report(ex, report, train_size=train_size, epochs=epochs, verbose=verbose)
        report.train = rows
    return report


def _record(path: str, name: str, passed: bool) -> None:
    """Remember the last check of a file in its folder, for ``deepbox exercise list``."""
    folder = os.path.dirname(os.path.abspath(path))
    status_path = os.path.join(folder, _STATUS_FILE)
    try:
        with open(status_path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict):
            doc = {}
    except (OSError, ValueError):
        doc = {}
    doc[name] = {"file": os.path.basename(path), "sha256": _digest(path), "passed": bool(passed)}
    try:
        _write_new(status_path, json.dumps(doc, indent=1, sort_keys=True))
    except OSError:  # a read-only folder: the status is a convenience
        pass


def status(name: str, dir=".") -> str:
    """``not started``, ``template``, ``in progress``, ``passed`` or ``failed`` for ``dir/NAME.py`` (or ``.ipynb``)."""
    ex = get(name)
    path = student_path(name, None, dir)
    if not os.path.isfile(path):
        return "not started"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".py") and text == ex.template_source:
        return "template"
    if path.endswith(".ipynb"):
        from deepbox.exercises.notebook import notebook_json

        if text == notebook_json(ex, ex.template_source):
            return "template"
    try:
        with open(os.path.join(os.fspath(dir), _STATUS_FILE), encoding="utf-8") as f:
            rec = json.load(f).get(ex.name)
        if rec and rec.get("sha256") == _digest(path):
            return "passed" if rec.get("passed") else "failed"
    except (OSError, ValueError, AttributeError):
        pass
    return "in progress"


def use(name: str, path=None, *, dir=".", part: str | None = None):
    """A context manager that swaps the student's implementation in for deepbox's own op.

    Inside the ``with`` block the public entry points (e.g. ``F.conv2d`` and ``nn.Conv2d``, or
    ``optim.Adam``) run the student's code; they are restored on exit, also after an error.
    ``part`` picks one part of a multi-part exercise (``conv2d``: ``naive`` or ``im2col``; default
    the last one the student implemented).
    """
    from deepbox.exercises.swap import use as _use

    ex = get(name)
    source = path if isinstance(path, dict) else student_path(name, path, dir)
    return _use(ex, source, part)

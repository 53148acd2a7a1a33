"""The inspector's files in a run folder, and how they are written and read back.

Everything lives in ``<run>/inspect/``:

* ``meta.json``: the model table (layers, types, output shapes, parameter counts), the classes,
  the recording interval and the status (``running`` / ``finished``); rewritten atomically.
* ``code.json``: per layer type, its docstring and the source of the reference ``Function``
  that computes its forward and backward (``deepbox.inspect.code``); written atomically.
* ``steps.jsonl``: one JSON line per recorded training step (per-layer statistics).
* ``epochs.jsonl``: one JSON line per epoch (the epoch's logs, the confusion matrix, the
  worst-classified images' labels), each pointing at ``epoch-NNNN.npz``, its images and filters.

JSON lines are appended with one ``write`` of a whole line, so a crash loses at most the line being
written; readers skip a last line that has no newline or does not parse. Other files are written
to a temporary file and renamed, so a reader sees the old file or the new one, never half of one.
Arrays are ``.npz`` files of plain numeric arrays, read back with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

__all__ = ["INSPECT_DIR", "FORMAT", "append_jsonl", "read_jsonl", "write_json", "read_json", "save_arrays",
           "load_arrays", "inspect_dir"]

INSPECT_DIR = "inspect"
FORMAT = "deepbox.inspect/1"


def inspect_dir(run_dir: str) -> str:
    return os.path.join(run_dir, INSPECT_DIR)


def _atomic(path: str, write) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str, doc) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (temporary file, then rename)."""
    data = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    _atomic(path, lambda f: f.write(data))


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: str, record) -> None:
    """Append ``record`` as one line with a single ``write`` on an append-only descriptor."""
    line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: str, offset: int = 0) -> tuple[list, int]:
    """The complete records of a JSON-lines file from byte ``offset`` on, and the offset after them.

    A last line without its newline (a write in progress, or a crash in the middle of one) is left
    for the next call; a complete line that does not parse is skipped.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    records = []
    for line in data[:end].split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records, offset + end + 1


def save_arrays(path: str, arrays: dict) -> None:
    """Write a dict of numeric arrays to an ``.npz`` file atomically."""
    for k, v in arrays.items():
        if np.asarray(v).dtype == object:
            raise TypeError(f"save_arrays: {k!r} is an object array; only numeric arrays are stored")
    _atomic(path, lambda f: np.savez(f, **arrays))


def load_arrays(path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}

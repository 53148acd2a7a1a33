"""Writing a file atomically: to a temporary file beside it, fsynced, then renamed over it.

A reader (or a crash, or SIGKILL) sees the old file or the new one, never a half-written one. The
temporary file is named ``.<name>.<pid>.<random>.tmp``; a process killed while writing cannot
remove its own, so the next write of the same file removes those whose process is gone. The new
file gets the permissions of the file it replaces, or those a plain ``open()`` would give under
the process's umask (``mkstemp`` alone would make it private, 0600).
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

__all__ = ["write_atomically", "write_text_atomically", "remove_stale_temporaries"]

# a temporary file of another naming (an older deepbox) is stale only once it is this old
_OLD_STYLE_AGE_S = 600.0


def _temp_prefix(path: str) -> str:
    return "." + os.path.basename(path) + "."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a platform that cannot tell: keep its file
    return True


def remove_stale_temporaries(path: str) -> list[str]:
    """Remove the temporary files that earlier, killed writers of ``path`` left; returns their paths."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix):-len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        full = os.path.join(folder, name)
        if pid_text.isdigit() and "." in middle:
            stale = int(pid_text) != os.getpid() and not _process_alive(int(pid_text))
        else:
            try:
                stale = time.time() - os.stat(full).st_mtime > _OLD_STYLE_AGE_S
            except OSError:
                stale = False
        if stale:
            try:
                os.unlink(full)
                removed.append(full)
            except OSError:
                pass
    return removed


def _file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_folder(folder: str) -> None:
    # make the rename itself durable; not every platform can open a directory
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike, fill: Callable[[str], None]) -> None:
    """Replace ``path`` by what ``fill(temporary_path)`` writes, atomically.

    ``fill`` writes the whole content to the temporary path it is given (and may fsync it; this
    function fsyncs it again before the rename). If ``fill`` raises, or the process is interrupted,
    the temporary file is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, expected a file path")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder {folder} does not exist (writing {path})")
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """``write_atomically`` for UTF-8 text."""
    def fill(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    write_atomically(path, fill)

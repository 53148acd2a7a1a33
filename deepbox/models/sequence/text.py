"""Character-level text data: a vocabulary, the Shakespeare corpus and random training windows.

The corpus is split by position, not at random: the last 10 % of the characters are the
validation text, so no validation window overlaps a training one.
"""
from __future__ import annotations

import os
from pathlib import Path

import deepbox
from deepbox.backend import xp

__all__ = ["CharVocab", "find_shakespeare", "read_text", "load_char_corpus", "random_windows", "bits_per_char",
           "EMBEDDED_SHAKESPEARE"]


class CharVocab:
    """A bijection between the distinct characters of a text and the ids 0..V-1 (sorted by character)."""

    def __init__(self, text: str | None = None, chars: list[str] | None = None) -> None:
        if chars is None:
            if text is None:
                raise ValueError("CharVocab needs a text or a list of characters")
            chars = sorted(set(text))
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str):
        """``s`` as an int64 array of ids; an unknown character raises a KeyError that names it."""
        try:
            return xp.fromiter((self.index[c] for c in s), dtype=xp.int64, count=len(s))
        except KeyError as e:
            raise KeyError(f"character {e.args[0]!r} is not in the vocabulary of {len(self)} characters") from None

    def decode(self, ids) -> str:
        arr = ids._data if isinstance(ids, deepbox.Tensor) else ids
        return "".join(self.chars[int(i)] for i in xp.asarray(arr).reshape(-1))

    def state_dict(self) -> dict:
        return {"chars": "".join(self.chars)}

    @classmethod
    def from_state_dict(cls, state: dict) -> CharVocab:
        return cls(chars=list(state["chars"]))


# the corpus shipped inside the package (see _data/README.md): the same text, compressed
EMBEDDED_SHAKESPEARE = Path(__file__).resolve().parent / "_data" / "shakespeare.txt.xz"


def find_shakespeare(path: str | os.PathLike | None = None) -> Path:
    """Locate the Shakespeare corpus: ``path``, ``$DEEPBOX_DATA``, a ``shared/data`` folder next to the
    repository, else the compressed copy inside the package (``shakespeare.txt.xz``).

    A ``path`` that is given must exist: nothing else is silently used instead.
    """
    if path is not None:
        if Path(path).is_file():
            return Path(path)
        raise FileNotFoundError(f"{path}: no such text file")
    candidates = []
    if os.environ.get("DEEPBOX_DATA"):
        candidates.append(Path(os.environ["DEEPBOX_DATA"]) / "shakespeare.txt")
    repo = Path(__file__).resolve().parents[3]
    candidates += [repo.parent / "shared" / "data" / "shakespeare.txt", repo / "data" / "shakespeare.txt",
                   EMBEDDED_SHAKESPEARE]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError("shakespeare.txt not found; looked in: " + ", ".join(str(c) for c in candidates)
                            + " (pass a path or set DEEPBOX_DATA)")


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file, or an xz-compressed one (``.xz``)."""
    path = Path(path)
    if path.suffix == ".xz":
        import lzma

        with lzma.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8")


def load_char_corpus(path=None, val_fraction: float = 0.1, max_chars: int | None = None):
    """Read a text file and return ``(vocab, train_ids, val_ids)``; the last ``val_fraction`` is validation.

    ``max_chars`` keeps only the first characters (quick runs); the vocabulary is always the whole file's.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    text = read_text(find_shakespeare(path))
    vocab = CharVocab(text)
    if max_chars is not None:
        text = text[:max_chars]
    ids = vocab.encode(text)
    n_val = int(len(ids) * val_fraction)
    return vocab, ids[: len(ids) - n_val], ids[len(ids) - n_val :]


def random_windows(ids, batch_size: int, seq_len: int, rng):
    """A batch of ``batch_size`` random windows: inputs (B, T) and next-character targets (B, T), int64 tensors."""
    if len(ids) <= seq_len:
        raise ValueError(f"text of {len(ids)} characters is too short for windows of {seq_len}")
    starts = rng.integers(0, len(ids) - seq_len - 1, size=batch_size)
    idx = starts[:, None] + xp.arange(seq_len + 1)[None, :]
    w = ids[idx]
    return deepbox.tensor(w[:, :-1]), deepbox.tensor(w[:, 1:])


def bits_per_char(model_fn, ids, seq_len: int, batch_size: int = 32, max_windows: int | None = None) -> float:
    """Mean cross-entropy in bits per character of ``model_fn(inputs) -> logits`` over consecutive windows of ``ids``.

    Windows tile the text without overlap (``max_windows`` caps how many, from the start).
    """
    import math

    import deepbox.nn.functional as F

    n = (len(ids) - 1) // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    if n < 1:
        raise ValueError(f"text of {len(ids)} characters is too short for windows of {seq_len}")
    total, count = 0.0, 0
    with deepbox.no_grad():
        for s in range(0, n, batch_size):
            rows = xp.arange(s, min(n, s + batch_size))
            idx = rows[:, None] * seq_len + xp.arange(seq_len + 1)[None, :]
            w = ids[idx]
            logits = model_fn(deepbox.tensor(w[:, :-1]))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), deepbox.tensor(w[:, 1:].reshape(-1)),
                                   reduction="sum")
            total += float(loss)
            count += w[:, 1:].size
    return total / count / math.log(2)

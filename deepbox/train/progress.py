"""Progress display for training and evaluation: tqdm bars on a terminal, one line per epoch elsewhere.

``verbose=0`` shows nothing; ``verbose=1`` shows a live bar (loss, accuracy, samples/s) when
the output is a terminal and tqdm is installed, and otherwise prints one summary line per
epoch; ``verbose=2`` prints only the summary lines. The bar's text is refreshed at most a few
times a second, so it costs nothing measurable per batch.
"""
from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar", "format_logs"]

_REFRESH_S = 0.25


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4g}"
    return str(value)


def format_logs(logs: dict) -> str:
    """``key value`` pairs, floats to 4 decimals: ``loss 0.3121  accuracy 0.8874``."""
    return "  ".join(f"{k} {_fmt(v)}" for k, v in logs.items())


class ProgressBar:
    """One pass over a loader: a tqdm bar, or nothing when it should not be drawn.

    Args:
        total: the number of batches (None when unknown).
        desc: the text before the bar (``"epoch 3/10"``, ``"eval"``).
        verbose: 0, 1 or 2 as described in the module docstring.
        stream: where to draw (default ``sys.stderr``).
    """

    def __init__(self, total: int | None, desc: str, verbose: int = 1, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None
        self.samples = 0
        self.start = time.perf_counter()
        self._last = self.start
        if verbose == 1 and _is_tty(self.stream):
            try:
                from tqdm.auto import tqdm
            except ImportError:  # the summary line still appears
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit="batch", leave=False, file=self.stream,
                                dynamic_ncols=True, mininterval=_REFRESH_S)

    def update(self, n_samples: int, logs_fn=None) -> None:
        """One batch of ``n_samples`` done; ``logs_fn()`` gives the postfix when it is time to redraw."""
        self.samples += n_samples
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.perf_counter()
        if logs_fn is not None and now - self._last >= _REFRESH_S:
            self._last = now
            post = dict(logs_fn())
            post["samples/s"] = f"{self.samples / max(now - self.start, 1e-9):.0f}"
            self.bar.set_postfix({k: _fmt(v) for k, v in post.items()}, refresh=False)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(self.elapsed, 1e-9)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

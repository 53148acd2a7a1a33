"""``deepbox.utils.benchmark``: time a statement the way ``torch.utils.benchmark`` does.

``Timer(stmt, setup, globals).timeit(n)`` runs ``stmt`` n times once; ``blocked_autorange()``
picks a block size that takes at least 10 ms, then times blocks until ``min_run_time`` has
passed, and reports the median and interquartile range per run -- medians, because a shared
machine's timings have long tails.

    >>> from deepbox.utils.benchmark import Timer
    >>> m = Timer("x * 2", setup="x = 3").timeit(100)
    >>> m.number_per_run
    100
"""
from __future__ import annotations

import statistics
import timeit as _timeit

__all__ = ["Measurement", "Timer"]


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.2f} {unit}"
    return f"{seconds:.3g} s"  # pragma: no cover


class Measurement:
    """Times per run (``times``), from blocks of ``number_per_run`` runs each; ``median``, ``mean``, ``iqr``."""

    def __init__(self, number_per_run: int, raw_times: list, label=None, sub_label=None, description=None,
                 stmt: str = "", setup: str = "pass", num_threads: int = 1):
        self.number_per_run = number_per_run
        self.raw_times = list(raw_times)
        self.label, self.sub_label, self.description = label, sub_label, description
        self.stmt, self.setup, self.num_threads = stmt, setup, num_threads

    @property
    def times(self) -> list:
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        if len(self.times) < 2:
            return 0.0
        q = statistics.quantiles(self.times, n=4, method="inclusive")
        return q[2] - q[0]

    @property
    def has_warnings(self) -> bool:
        return len(self.times) > 1 and self.iqr > 0.1 * self.median

    @property
    def title(self) -> str:
        return ": ".join(str(x) for x in (self.label, self.sub_label) if x) or self.stmt

    def __repr__(self) -> str:
        lines = [f"<deepbox.utils.benchmark.Measurement object at {hex(id(self))}>", self.title]
        if self.description:
            lines.append(str(self.description))
        if self.setup and self.setup != "pass":
            lines.append(f"setup: {self.setup}")
        n = len(self.times)
        if n == 1:
            lines.append(f"  {_fmt(self.median)}")
            lines.append(f"  1 measurement, {self.number_per_run} runs , {self.num_threads} thread")
        else:
            q = statistics.quantiles(self.times, n=4, method="inclusive")
            lines.append(f"  Median: {_fmt(self.median)}")
            lines.append(f"  IQR:    {_fmt(self.iqr)} ({_fmt(q[0])} to {_fmt(q[2])})")
            lines.append(f"  {n} measurements, {self.number_per_run} runs per measurement, {self.num_threads} thread")
            if self.has_warnings:
                lines.append(f"  WARNING: Interquartile range is {100 * self.iqr / self.median:.1f}% of the median "
                             "measurement.\n           This could indicate system fluctuation.")
        return "\n".join(lines)


class Timer:
    """Time ``stmt`` (a string of code, run with ``globals``) after running ``setup`` once."""

    def __init__(self, stmt: str = "pass", setup: str = "pass", global_setup: str = "", timer=None,
                 globals: dict | None = None, label=None, sub_label=None, description=None, env=None,  # noqa: A002
                 num_threads: int = 1, language="python"):
        if language not in ("python", "py"):
            raise ValueError("deepbox's Timer times Python statements only")
        self.stmt, self.setup = stmt, setup
        self.label, self.sub_label, self.description = label, sub_label, description
        self.num_threads = num_threads
        self._timer = _timeit.Timer(stmt=stmt, setup=setup, timer=timer or _timeit.default_timer,
                                    globals=dict(globals or {}))

    def _measure(self, number: int, raw: list) -> Measurement:
        return Measurement(number, raw, self.label, self.sub_label, self.description, self.stmt, self.setup,
                           self.num_threads)

    def timeit(self, number: int = 1000000) -> Measurement:
        """One block of ``number`` runs."""
        self._timer.timeit(number=max(1, number // 100))  # warm-up
        return self._measure(number, [self._timer.timeit(number=number)])

    def repeat(self, repeat: int = -1, number: int = -1):
        raise NotImplementedError("Timer.repeat is deprecated in PyTorch; use blocked_autorange or timeit")

    def _block_size(self) -> int:
        number = 1
        while True:
            if self._timer.timeit(number=number) >= 0.01 or number >= 10 ** 9:
                return number
            number *= 10

    def blocked_autorange(self, callback=None, min_run_time: float = 0.2) -> Measurement:
        """Blocks of a size that takes >= 10 ms, repeated until ``min_run_time`` seconds have passed."""
        number = self._block_size()
        raw, total = [], 0.0
        while total < min_run_time or len(raw) < 3:
            t = self._timer.timeit(number=number)
            raw.append(t)
            total += t
            if callback is not None:
                callback(number, t)
        return self._measure(number, raw)

    def adaptive_autorange(self, threshold: float = 0.1, *, min_run_time: float = 0.01, max_run_time: float = 10.0,
                           callback=None) -> Measurement:
        """Blocks until the IQR is below ``threshold`` times the median, or ``max_run_time`` has passed."""
        number = self._block_size()
        raw, total = [], 0.0
        while total < max_run_time:
            t = self._timer.timeit(number=number)
            raw.append(t)
            total += t
            m = self._measure(number, raw)
            if total >= min_run_time and len(raw) >= 3 and m.iqr <= threshold * m.median:
                break
        return self._measure(number, raw)

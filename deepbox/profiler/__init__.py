"""``deepbox.profiler``: where a training step's time goes, op by op (``torch.profiler``'s API).

Inside ``with profile() as prof:`` every op's forward (each ``Function.apply``) and backward (each
graph node's ``backward``) is timed, and ``record_function("name")`` marks ranges of your own
(a data-loading step, a model's forward). ``prof.key_averages().table(sort_by="self_cpu_time_total")``
prints PyTorch's summary table; ``prof.export_chrome_trace("trace.json")`` writes a timeline that
``chrome://tracing`` or Perfetto shows.

    >>> import deepbox as torch
    >>> from deepbox.profiler import profile, record_function
    >>> x = torch.randn(64, 32, requires_grad=True)
    >>> with profile() as prof:
    ...     with record_function("step"):
    ...         (x @ x.t()).relu().sum().backward()
    >>> "MatMul" in {e.key for e in prof.key_averages()}
    True

"Self" time is an event's time minus that of the events nested inside it. The wrapping is
installed only while a profiler is active, so unprofiled code pays nothing.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from enum import Enum

from deepbox.autograd.function import Function
from deepbox.tensor import Tensor

__all__ = ["ProfilerAction", "ProfilerActivity", "profile", "record_function", "schedule",
           "tensorboard_trace_handler"]


class ProfilerActivity(Enum):
    CPU = "cpu"
    CUDA = "cuda"  # accepted; deepbox records nothing on devices it does not have


class ProfilerAction(Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0):
    """The action for each ``prof.step()``: skip, wait, warm up, record ``active`` steps, repeat."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise ValueError("Invalid profiler schedule arguments")

    def fn(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if pos < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return fn


class _Event:
    __slots__ = ("name", "start_ns", "end_ns", "tid", "shapes", "kind", "children_ns")

    def __init__(self, name, start_ns, tid, shapes, kind):
        self.name, self.start_ns, self.end_ns, self.tid = name, start_ns, start_ns, tid
        self.shapes, self.kind, self.children_ns = shapes, kind, 0

    @property
    def cpu_time_total_us(self) -> float:
        return (self.end_ns - self.start_ns) / 1000.0

    @property
    def self_cpu_time_total_us(self) -> float:
        return (self.end_ns - self.start_ns - self.children_ns) / 1000.0


class _Recorder:
    """The active profilers' shared event sink and the per-thread stack that nesting is read from."""

    def __init__(self):
        self.profilers: list = []
        self.local = threading.local()
        self.original_apply = None

    def stack(self) -> list:
        s = getattr(self.local, "stack", None)
        if s is None:
            s = self.local.stack = []
        return s

    def begin(self, name, shapes=None, kind="cpu_op"):
        ev = _Event(name, time.perf_counter_ns(), threading.get_ident(), shapes, kind)
        self.stack().append(ev)
        return ev

    def end(self, ev) -> None:
        ev.end_ns = time.perf_counter_ns()
        stack = self.stack()
        if stack and stack[-1] is ev:
            stack.pop()
        if stack:
            stack[-1].children_ns += ev.end_ns - ev.start_ns
        for p in self.profilers:
            if p._recording:
                p._events.append(ev)


_recorder = _Recorder()


def _op_name(cls) -> str:
    name = cls.__name__.lstrip("_")
    for suffix in ("KernelFn", "Function", "Fn"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _shapes(args):
    return [list(a.shape) if isinstance(a, Tensor) else [] for a in args]


def _install() -> None:
    if _recorder.original_apply is not None:
        return
    original = Function.__dict__["apply"]
    _recorder.original_apply = original

    def profiled_apply(cls, *args, **kwargs):
        record_shapes = any(p.record_shapes for p in _recorder.profilers)
        ev = _recorder.begin(_op_name(cls), _shapes(args) if record_shapes else None)
        try:
            out = original.__func__(cls, *args, **kwargs)
        finally:
            _recorder.end(ev)
        first = out[0] if isinstance(out, tuple) and out else out
        node = getattr(first, "_ctx", None) if isinstance(first, Tensor) else None
        if node is not None and "backward" not in vars(node):
            node.backward = _timed_backward(type(node).backward, _op_name(cls) + "Backward")
        return out

    Function.apply = classmethod(profiled_apply)


def _timed_backward(backward, name):
    @functools.wraps(backward)
    def run(ctx, *grads):
        ev = _recorder.begin(name, None, "backward")
        try:
            return backward(ctx, *grads)
        finally:
            _recorder.end(ev)

    return run


def _uninstall() -> None:
    if _recorder.original_apply is not None and not _recorder.profilers:
        Function.apply = _recorder.original_apply
        _recorder.original_apply = None


class record_function(contextlib.ContextDecorator):  # noqa: N801 - PyTorch's name
    """Mark a range of your own code; it shows in the table and the trace under ``name``."""

    def __init__(self, name: str, args: str | None = None):
        self.name = name
        self._ev = None

    def __enter__(self):
        if _recorder.profilers:
            self._ev = _recorder.begin(self.name, None, "user_annotation")
        return self

    def __exit__(self, *exc):
        if self._ev is not None:
            _recorder.end(self._ev)
            self._ev = None
        return False


class FunctionEventAvg:
    """One row of ``key_averages()``: the events of one name (and input shapes, when grouped by them)."""

    def __init__(self, key, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0

    def add(self, ev: _Event) -> None:
        self.count += 1
        self.cpu_time_total += ev.cpu_time_total_us
        self.self_cpu_time_total += ev.self_cpu_time_total_us

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.3f}us "
                f"cpu_time={self.cpu_time:.3f}us count={self.count}>")


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """Rows of averages; ``table()`` formats them as PyTorch does."""

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width: int = 55,
              header: str | None = None, top_level_events_only: bool = False) -> str:
        rows = list(self)
        if sort_by is not None:
            keys = {"self_cpu_time_total": "self_cpu_time_total", "cpu_time_total": "cpu_time_total",
                    "cpu_time": "cpu_time", "count": "count", "self_cpu_time": "self_cpu_time_total"}
            if sort_by not in keys:
                raise ValueError(f"table(sort_by={sort_by!r}): expected one of {sorted(keys)}")
            rows.sort(key=lambda r: getattr(r, keys[sort_by]), reverse=True)
        rows = rows[:row_limit] if row_limit and row_limit > 0 else rows
        total_self = sum(r.self_cpu_time_total for r in self) or 1.0
        with_shapes = any(r.input_shapes is not None for r in rows)
        name_w = max([len("Name")] + [min(len(r.key), max_name_column_width) for r in rows]) + 2
        cols = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"]
        widths = [name_w, 12, 12, 12, 12, 12, 12]
        if with_shapes:
            cols.append("Input Shapes")
            widths.append(max(14, *(len(str(r.input_shapes)) + 2 for r in rows)))
        line = "  ".join("-" * w for w in widths)

        def fmt(values):
            out = [v.rjust(w) for v, w in zip(values, widths)]  # right-aligned, as PyTorch prints it
            return "  ".join(out)

        lines = ([header] if header else []) + [line, fmt(cols), line]
        for r in rows:
            name = r.key if len(r.key) <= max_name_column_width else r.key[: max_name_column_width - 3] + "..."
            vals = [name, f"{100 * r.self_cpu_time_total / total_self:.2f}%", _fmt_us(r.self_cpu_time_total),
                    f"{100 * r.cpu_time_total / total_self:.2f}%", _fmt_us(r.cpu_time_total), _fmt_us(r.cpu_time),
                    str(r.count)]
            if with_shapes:
                vals.append(str(r.input_shapes))
            lines.append(fmt(vals))
        lines += [line, f"Self CPU time total: {_fmt_us(sum(r.self_cpu_time_total for r in self))}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


class profile:  # noqa: N801 - PyTorch's name
    """Record op-level timings while the block runs (``torch.profiler.profile``'s arguments)."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, experimental_config=None, execution_trace_observer=None,
                 acc_events: bool = False, use_cuda=None):
        self.activities = set(activities or [ProfilerActivity.CPU])
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.step_num = 0
        self._events: list = []
        self._recording = schedule is None
        self._entered = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> None:
        _install()
        _recorder.profilers.append(self)
        self._entered = True
        if self.schedule is not None:
            self._recording = self.schedule(self.step_num) in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)

    def stop(self) -> None:
        if self in _recorder.profilers:
            _recorder.profilers.remove(self)
        _uninstall()
        if self.on_trace_ready is not None and self.schedule is None:
            self.on_trace_ready(self)

    def step(self) -> None:
        """Advance the schedule; at the end of an active span, hand the trace to ``on_trace_ready``."""
        if self.schedule is None:
            return
        action = self.schedule(self.step_num)
        self.step_num += 1
        nxt = self.schedule(self.step_num)
        if action is ProfilerAction.RECORD_AND_SAVE and self.on_trace_ready is not None:
            self.on_trace_ready(self)
        if nxt in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE) and action not in (
                ProfilerAction.RECORD, ProfilerAction.WARMUP):
            self._events = []
        self._recording = nxt in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)

    def events(self) -> list:
        return list(self._events)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        rows: dict = {}
        for ev in self._events:
            shapes = str(ev.shapes) if group_by_input_shape and ev.shapes is not None else None
            key = (ev.name, shapes)
            if key not in rows:
                rows[key] = FunctionEventAvg(ev.name, shapes if group_by_input_shape else None)
            rows[key].add(ev)
        return EventList(rows.values())

    def export_chrome_trace(self, path: str) -> None:
        """Write the events in the Chrome trace-event format (complete events, microseconds)."""
        if not self._events:
            raise RuntimeError("export_chrome_trace: no events were recorded (was the profiler active?)")
        t0 = min(e.start_ns for e in self._events)
        trace = {"traceEvents": [
            {"name": e.name, "ph": "X", "cat": e.kind, "ts": (e.start_ns - t0) / 1000.0,
             "dur": (e.end_ns - e.start_ns) / 1000.0, "pid": os.getpid(), "tid": e.tid,
             **({"args": {"Input Dims": e.shapes}} if e.shapes is not None else {})}
            for e in sorted(self._events, key=lambda e: e.start_ns)], "displayTimeUnit": "ms"}
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(trace, f)
        os.replace(tmp, path)


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, use_gzip: bool = False):
    """An ``on_trace_ready`` that writes each trace as ``<dir>/<worker>.<step>.pt.trace.json``."""
    def handler(prof: profile) -> None:
        os.makedirs(dir_name, exist_ok=True)
        name = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        prof.export_chrome_trace(os.path.join(dir_name, f"{name}.{prof.step_num}.pt.trace.json"))

    return handler

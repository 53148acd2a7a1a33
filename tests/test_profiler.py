"""deepbox.profiler: every op's forward and backward is recorded with correct counts and nesting, the table has
PyTorch's columns, the Chrome trace is valid JSON, schedules act as torch.profiler's, and nothing stays wrapped."""
from __future__ import annotations

import json

import pytest
import torch

import deepbox
import deepbox.nn as nn
from deepbox.autograd.function import Function
from deepbox.profiler import ProfilerAction, profile, record_function, schedule


def _step(m, x, y):
    with record_function("forward"):
        loss = nn.functional.cross_entropy(m(x), y)
    with record_function("backward"):
        loss.backward()


def test_ops_forward_and_backward_are_counted_and_nested():
    deepbox.manual_seed(0)
    m = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    x, y = deepbox.randn(8, 20), deepbox.randint(0, 5, (8,))
    original = Function.__dict__["apply"]
    with profile() as prof:
        for _ in range(3):
            _step(m, x, y)
    assert Function.__dict__["apply"] is original  # nothing stays wrapped
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["Linear"].count == 6 and rows["LinearBackward"].count == 6
    assert rows["Relu"].count == 3 and rows["ReluBackward"].count == 3
    assert rows["forward"].count == 3 and rows["backward"].count == 3
    for r in rows.values():
        assert 0 <= r.self_cpu_time_total <= r.cpu_time_total + 1e-9
    # a range's self time is its total minus the ops inside it
    fwd_children = sum(rows[k].cpu_time_total for k in ("Linear", "Relu", "CrossEntropy") if k in rows)
    assert rows["forward"].self_cpu_time_total == pytest.approx(rows["forward"].cpu_time_total - fwd_children,
                                                                rel=1e-6, abs=1e-3)
    # after the block, ops run unrecorded
    m(x)
    assert sum(r.count for r in prof.key_averages() if r.key == "Linear") == 6


def test_table_has_torch_columns_and_sorts():
    with profile() as prof:
        (deepbox.randn(30, 30, requires_grad=True) @ deepbox.randn(30, 30)).sum().backward()
    ours = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    with torch.profiler.profile() as tprof:
        (torch.randn(30, 30, requires_grad=True) @ torch.randn(30, 30)).sum().backward()
    theirs = tprof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    header = [line for line in theirs.splitlines() if line.strip().startswith("Name")][0]
    for col in ("Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"):
        assert col in header and col in ours
    assert "Self CPU time total" in ours
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="nonsense")


def test_record_shapes_and_chrome_trace(tmp_path):
    with profile(record_shapes=True) as prof:
        with record_function("mine"):
            deepbox.randn(4, 3).exp()
    grouped = prof.key_averages(group_by_input_shape=True)
    assert any(r.key == "Exp" and r.input_shapes == "[[4, 3]]" for r in grouped)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    names = {e["name"] for e in trace["traceEvents"]}
    assert {"mine", "Exp"} <= names
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in trace["traceEvents"])


def test_schedule_matches_torch():
    ours = schedule(wait=1, warmup=1, active=2, repeat=2, skip_first=1)
    theirs = torch.profiler.schedule(wait=1, warmup=1, active=2, repeat=2, skip_first=1)
    assert [ours(i).name for i in range(14)] == [theirs(i).name for i in range(14)]
    assert ours(0) is ProfilerAction.NONE


def test_schedule_hands_active_steps_to_on_trace_ready():
    seen = []
    sched = schedule(wait=1, warmup=1, active=2)
    with profile(schedule=sched, on_trace_ready=lambda p: seen.append(sum(r.count for r in p.key_averages()
                                                                            if r.key == "Exp"))) as prof:
        for _ in range(4):
            deepbox.randn(3).exp()
            prof.step()
    assert seen == [2]  # steps 2 and 3 were recorded; the wait and warm-up steps were not


def test_no_record_function_cost_without_a_profiler():
    with record_function("outside"):
        deepbox.randn(2).exp()
    with profile() as prof:
        pass
    assert list(prof.key_averages()) == []
    with pytest.raises(RuntimeError, match="no events"):
        prof.export_chrome_trace("/tmp/never-written.json")

"""deepbox.utils.benchmark.Timer: how many times a statement runs, and the Measurement's statistics (no timings
are asserted: the machine is shared)."""
from __future__ import annotations

import statistics

from deepbox.utils.benchmark import Measurement, Timer


def test_timeit_runs_the_statement_number_times_after_setup_once():
    env = {"calls": [], "setups": []}
    t = Timer("calls.append(1)", setup="setups.append(1)", globals=env, label="append")
    m = t.timeit(200)
    assert m.number_per_run == 200 and len(m.times) == 1
    assert len(env["calls"]) == 200 + 2  # the block plus the warm-up of number // 100
    assert m.median > 0 and "append" in repr(m) and "200 runs" in repr(m)


def test_blocked_autorange_blocks_and_statistics():
    t = Timer("sum(range(200))")
    m = t.blocked_autorange(min_run_time=0.05)
    assert len(m.times) >= 3 and m.number_per_run >= 1
    assert m.median == statistics.median(m.times) and m.mean == statistics.fmean(m.times)
    assert "Median" in repr(m)


def test_measurement_statistics_by_hand():
    m = Measurement(10, [1.0, 2.0, 3.0, 4.0, 100.0])
    assert m.times == [0.1, 0.2, 0.3, 0.4, 10.0]
    assert m.median == 0.3
    assert abs(m.iqr - 0.2) < 1e-12 and m.has_warnings

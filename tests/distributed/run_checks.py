"""Run named checks of a check module on this rank: ``run_checks.py MODULE OUT_DIR NAME...`` (under deepbox launch).

Each check runs on every rank in the order given; a failing check is recorded (with its
traceback) and the next one still runs, since every rank's failure is its own and all checks
keep the ranks' collectives in step.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main() -> None:
    module, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    mod = importlib.import_module(f"tests.distributed.{module}")
    import deepbox
    import deepbox.distributed as dist

    results = {}
    if hasattr(mod, "before_init"):
        try:
            mod.before_init()
            results["before_init"] = "ok"
        except Exception:   # noqa: BLE001 - recorded for the test to show
            results["before_init"] = traceback.format_exc()
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    for name in names:
        deepbox.manual_seed(0)
        try:
            metrics = getattr(mod, f"check_{name}")(rank, size)
            results[name] = "ok"
            if metrics is not None:
                results[f"{name}:metrics"] = metrics
        except Exception:   # noqa: BLE001
            results[name] = traceback.format_exc()
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".rank{rank}.json")
    with open(tmp, "w") as f:
        json.dump(results, f)
    os.replace(tmp, os.path.join(out_dir, f"rank{rank}.json"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""What the inspector's recorder costs a training step: an in-process A/B on the CLI's default model.

The same model trains on the same batch with and without ``deepbox.inspect.watch`` in
alternating blocks of ``every`` steps (each recorded block holds exactly one recorded step),
timed in CPU time on one thread, which other processes on a shared machine disturb least. It
prints the median plain step, the median block with the recorder, their relative difference (the
overhead at that interval; target under 5 % at the default 50), and the cost of one recorded step
and of one unrecorded ``step()`` call on their own. There is no PyTorch counterpart to compare.

    python benchmarks/bench_inspector.py [--quick] [--model convnet] [--every 50] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="convnet")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5, help="A/B pairs of blocks")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, every 10, batch 32")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.every, args.batch_size = 2, 10, 32

    import numpy as np

    import deepbox
    import deepbox.nn.functional as F
    from deepbox.inspect import watch
    from deepbox.models import get_model

    deepbox.set_num_threads(1)
    deepbox.manual_seed(0)
    model = get_model(args.model, in_channels=1, num_classes=10)
    opt = deepbox.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = deepbox.from_numpy(rng.standard_normal((args.batch_size, 1, 28, 28)).astype(np.float32))
    y = deepbox.from_numpy(rng.integers(0, 10, args.batch_size))
    clock = time.process_time

    def train_step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):  # warm-up: compiled kernels, allocator
        train_step()
    plain, recorded, record_steps, idle_calls = [], [], [], []
    with tempfile.TemporaryDirectory() as run:
        rec = watch(model, run, every=args.every)
        step = 0
        for _ in range(args.rounds):
            rec._disarm()  # plain steps run with no hook at all, as between recorded steps
            t0 = clock()
            for _ in range(args.every):
                train_step()
            plain.append((clock() - t0) / args.every)

            t0 = clock()
            rec._arm()  # what the step before a recorded one does (copies the weights, adds the hooks)
            for i in range(args.every):
                ts = clock()
                loss = train_step()
                tc = clock()
                step += 1
                rec.step(loss=loss.item(), step=step)  # records step 1, 1 + every, ...
                if i == 0:
                    record_steps.append(clock() - ts)
                else:
                    idle_calls.append(clock() - tc)
            recorded.append((clock() - t0) / args.every)
        rec.close()
    p, r = statistics.median(plain), statistics.median(recorded)
    one = statistics.median(record_steps)
    idle = statistics.median(idle_calls)
    print(f"model {args.model}, batch {args.batch_size}, every {args.every}, {args.rounds} rounds, 1 thread, CPU time")
    print(f"plain step                   {p * 1e3:8.2f} ms  (spread {min(plain) * 1e3:.2f}-{max(plain) * 1e3:.2f})")
    print(f"step with the recorder       {r * 1e3:8.2f} ms  "
          f"(spread {min(recorded) * 1e3:.2f}-{max(recorded) * 1e3:.2f})")
    print(f"overhead (A/B)               {100 * (r - p) / p:8.2f} %")
    print(f"one recorded step            {one * 1e3:8.2f} ms  = {one / p:.2f} plain steps")
    print(f"unrecorded rec.step() call   {idle * 1e6:8.2f} us")
    print(f"estimate (record once/every) {100 * ((one - p) / args.every + idle) / p:8.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Lectures 6-8 (III) — why a deep sigmoid network stops learning, seen in the inspector.

What it demonstrates: ``l07_batchnorm.py``'s MLP made deeper (8 hidden layers of 100 sigmoid
units) and trained on MNIST-10k with plain SGD, once without and once with ``nn.BatchNorm1d``
before each sigmoid, both recorded by ``deepbox.inspect.watch``. Without batch norm the gradient
reaching a layer shrinks by about a factor of four per sigmoid (its derivative is at most 1/4)
on the way back from the loss, so the first layers' gradient norms are orders of magnitude below
the last layer's and the loss barely moves; with batch norm every layer gets a gradient of the
same order and the network learns. The script prints the first-to-last gradient-norm ratio of
both runs; ``deepbox inspect OUT/plain`` and ``deepbox inspect OUT/batchnorm`` show the gradient
flow, the saturation and the histograms (``docs/inspector.md`` walks through them).

    python examples/l07_inspect_deep_sigmoid.py [--quick] [--out DIR] [--depth 8] [--steps 1500]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.inspect import watch  # noqa: E402
from examples._course import evaluate, finish, load_mnist10k, parser, setup  # noqa: E402
from examples.l07_batchnorm import mlp  # noqa: E402

NAME = "l07_inspect_deep_sigmoid"


def train(model, run_dir, x, y, xte, yte, steps: int, lr: float, every: int, seed: int, per_epoch: int):
    """Plain SGD on minibatches of 60, recorded one step in ``every``; an inspector "epoch" every ``per_epoch``."""
    opt = deepbox.optim.SGD(model.parameters(), lr=lr)
    rec = watch(model, str(run_dir), every=every, data=(xte[:500], yte[:500]), classes=[str(d) for d in range(10)])
    rng = np.random.default_rng(seed)
    step, losses = 0, []
    while step < steps:
        for idx in np.array_split(rng.permutation(len(x)), len(x) // 60):
            loss = F.cross_entropy(model(deepbox.from_numpy(x[idx])), deepbox.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            step += 1
            rec.step(loss=losses[-1], lr=lr)
            if step % per_epoch == 0 or step == steps:
                test_loss, test_acc = evaluate(model, xte, yte)
                rec.epoch({"loss": float(np.mean(losses[-per_epoch:])), "val_loss": test_loss,
                           "val_accuracy": test_acc})
            if step == steps:
                break
    rec.close()
    return losses, evaluate(model, xte, yte)[1]


def gradient_flow(run_dir) -> list[float]:
    """The mean gradient norm of each linear layer over the run's recorded steps, input first."""
    from deepbox.inspect.store import read_json, read_jsonl

    meta = read_json(str(Path(run_dir) / "inspect" / "meta.json"))
    names = [l["name"] for l in meta["layers"] if l["type"] == "Linear"]
    recs, _ = read_jsonl(str(Path(run_dir) / "inspect" / "steps.jsonl"))
    return [float(np.mean([r["layers"][n]["gnorm"] for r in recs])) for n in names]


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--depth", type=int, default=8, help="hidden sigmoid layers (default 8)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--every", type=int, default=25, help="record one SGD step in this many")
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    n_test = 2000
    if args.quick:
        args.steps, n_test, args.every = 60, 300, 10
    x, y, xte, yte = load_mnist10k(8000, n_test)
    per_epoch = max(args.steps // (3 if args.quick else 6), 1)

    deepbox.manual_seed(args.seed)
    plain = mlp(False, depth=args.depth)
    results = {}
    for label, bn in (("plain", False), ("batchnorm", True)):
        model = mlp(bn, depth=args.depth)
        # the same linear weights in both runs: the only difference is the normalisation
        for s, d in zip([m for m in plain.modules() if isinstance(m, nn.Linear)],
                        [m for m in model.modules() if isinstance(m, nn.Linear)]):
            d.load_state_dict(s.state_dict())
        losses, acc = train(model, out / label, x, y, xte, yte, args.steps, args.lr, args.every, args.seed, per_epoch)
        flow = gradient_flow(out / label)
        k = max(len(losses) // 10, 1)
        results[label] = {"final_train_loss": float(np.mean(losses[-k:])), "test_acc": acc, "gradient_norms": flow,
                          "first_to_last": flow[0] / flow[-1]}
        print(f"{label:>10}: training loss {results[label]['final_train_loss']:.3f}, test accuracy {acc:.3f}; "
              f"gradient norm of the first linear layer / the last: {flow[0] / flow[-1]:.2e}")
    print(f"see inside: deepbox inspect {out / 'plain'}   (and {out / 'batchnorm'})")
    return finish(out, results)


if __name__ == "__main__":
    main()

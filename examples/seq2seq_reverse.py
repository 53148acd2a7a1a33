"""Sequence to sequence: an encoder-decoder transformer learns to reverse digit strings.

    python examples/seq2seq_reverse.py                # 3000 steps, a few minutes on 2 cores
    python examples/seq2seq_reverse.py --quick        # a few seconds: a smoke test

Sources are random digit strings of 4 to 12 digits, padded to a batch (the padding is masked
with ``src_key_padding_mask``); the target is the reversed string followed by an end token.
Reversing needs attention: output position i must look at input position n - 1 - i. Decoding is
greedy; the score is the exact-match accuracy on held-out strings.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox.models.sequence import Seq2SeqTransformer  # noqa: E402

PAD, BOS, EOS = 0, 1, 2
DIGIT0 = 3          # digit d is token 3 + d
VOCAB = 13


def make_batch(rng, n, min_len, max_len):
    """Returns src (n, max_len), tgt_in (n, max_len + 1), tgt_out (n, max_len + 1), lengths."""
    lens = rng.integers(min_len, max_len + 1, size=n)
    src = np.full((n, max_len), PAD, np.int64)
    tgt_in = np.full((n, max_len + 1), PAD, np.int64)
    tgt_out = np.full((n, max_len + 1), PAD, np.int64)
    for i, L in enumerate(lens):
        digits = rng.integers(0, 10, size=L) + DIGIT0
        src[i, :L] = digits
        rev = digits[::-1]
        tgt_in[i, 0] = BOS
        tgt_in[i, 1 : L + 1] = rev
        tgt_out[i, :L] = rev
        tgt_out[i, L] = EOS
    return src, tgt_in, tgt_out, lens


def exact_match(model, src, tgt_out, lens, batch=250):
    hits = 0
    for s in range(0, len(src), batch):
        sb = deepbox.tensor(src[s : s + batch])
        pred = model.greedy_decode(sb, BOS, src.shape[1] + 1, src_key_padding_mask=sb == PAD)._data
        for p, t, L in zip(pred, tgt_out[s : s + batch], lens[s : s + batch]):
            hits += bool(np.array_equal(p[: L + 1], t[: L + 1]))
    return hits / len(src)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--min-len", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="short strings, 40 steps: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.max_len, args.test_size, args.batch_size = 25, 5, 32, 16
    deepbox.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    test = make_batch(np.random.default_rng(12345), args.test_size, args.min_len, args.max_len)
    model = Seq2SeqTransformer(VOCAB, VOCAB, d_model=args.d_model, nhead=4, num_encoder_layers=2,
                               num_decoder_layers=2, dim_feedforward=2 * args.d_model, max_len=args.max_len + 2)
    opt = deepbox.optim.Adam(model.parameters(), lr=args.lr)
    sched = deepbox.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        src, tgt_in, tgt_out, _ = make_batch(rng, args.batch_size, args.min_len, args.max_len)
        s = deepbox.tensor(src)
        logits = model(s, deepbox.tensor(tgt_in), src_key_padding_mask=s == PAD)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), deepbox.tensor(tgt_out.reshape(-1)), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        deepbox.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps:
            print(f"step {step:5d}  {time.perf_counter() - t0:6.1f}s  loss {float(loss):.4f}", flush=True)
    acc = exact_match(model, test[0], test[2], test[3])
    print(f"exact-match accuracy {acc:.4f} on {args.test_size} held-out strings "
          f"({args.min_len}-{args.max_len} digits) after {time.perf_counter() - t0:.1f}s")
    example = test[0][:1]
    pred = model.greedy_decode(deepbox.tensor(example), BOS, example.shape[1] + 1,
                               src_key_padding_mask=deepbox.tensor(example == PAD))._data[0]
    show = lambda ids: "".join(str(int(t) - DIGIT0) for t in ids if t >= DIGIT0)
    print(f"example: {show(example[0])} -> {show(pred[: list(pred).index(EOS) if EOS in pred else None])}")
    return {"exact_match": acc, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    main()

"""Train a small GPT-style transformer on Shakespeare, character by character, and sample from it.

    python examples/char_gpt.py                       # about 3 minutes on 2 cores
    python examples/char_gpt.py --layers 6 --d-model 192 --time-limit 900
    python examples/char_gpt.py --quick               # a few seconds: a smoke test

A decoder-only transformer (causal self-attention, pre-norm blocks, GELU, learned positions) predicts
the next character. The last 10 % of the text is held out; validation loss is in bits per character.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import deepbox  # noqa: E402
from deepbox.models.sequence import CharGPT, load_char_corpus, train_char_lm  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="path of shakespeare.txt (default: found automatically)")
    ap.add_argument("--time-limit", type=float, default=180.0, help="seconds of training")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=128, help="context length")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--val-windows", type=int, default=256, help="validation windows of block-size (0: all)")
    ap.add_argument("--prompt", default="ROMEO:")
    ap.add_argument("--sample-len", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="save the trained weights here (deepbox.save)")
    ap.add_argument("--quick", action="store_true", help="tiny model and data: a smoke test in a few seconds")
    args = ap.parse_args(argv)
    if args.quick:
        args.time_limit, args.max_steps, args.batch_size, args.block_size = 30.0, 20, 8, 32
        args.d_model, args.layers, args.heads, args.eval_every, args.val_windows = 32, 2, 2, 10, 16
        args.sample_len, args.warmup = 40, 5
    deepbox.manual_seed(args.seed)
    vocab, train_ids, val_ids = load_char_corpus(args.data, max_chars=200_000 if args.quick else None)
    print(f"corpus: {len(train_ids):,} training and {len(val_ids):,} validation characters, vocabulary {len(vocab)}")
    model = CharGPT(len(vocab), args.block_size, args.d_model, args.layers, args.heads, dropout=args.dropout)
    print(f"CharGPT: {sum(p.numel() for p in model.parameters()):,} parameters")
    res = train_char_lm(model, train_ids, val_ids, seq_len=args.block_size, batch_size=args.batch_size, lr=args.lr,
                        weight_decay=0.01, warmup=args.warmup, clip=args.clip, max_steps=args.max_steps,
                        time_limit=args.time_limit, eval_every=args.eval_every,
                        val_windows=args.val_windows or None, seed=args.seed)
    prompt = deepbox.tensor(vocab.encode(args.prompt)[None, :])
    out = model.generate(prompt, args.sample_len, temperature=args.temperature, top_k=args.top_k)
    print("-" * 60)
    print(vocab.decode(out[0]))
    print("-" * 60)
    if args.save:
        deepbox.save({"model": model.state_dict(), "vocab": vocab.chars}, args.save)
    return res


if __name__ == "__main__":
    main()

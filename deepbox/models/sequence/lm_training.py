"""A training loop for character language models, shared by the examples and usable from the CLI.

``train_char_lm`` samples random windows of the training text, minimises next-character
cross-entropy with Adam(W), clips the gradient norm, and reports validation bits per character.
It works with any model whose forward maps ids (B, T) to logits (B, T, V), or to a tuple whose
first element is the logits (``CharLSTM`` also returns its state).
"""
from __future__ import annotations

import math
import time

import deepbox
import deepbox.nn.functional as F
from deepbox.backend import xp
from deepbox.models.sequence.text import bits_per_char, random_windows

__all__ = ["train_char_lm", "logits_of"]


def logits_of(model, ids):
    out = model(ids)
    return out[0] if isinstance(out, tuple) else out


def train_char_lm(model, train_ids, val_ids, *, seq_len: int = 128, batch_size: int = 64, lr: float = 3e-3,
                  weight_decay: float = 0.0, warmup: int = 0, clip: float = 1.0, max_steps: int = 100_000,
                  time_limit: float | None = None, eval_every: int = 100, val_windows: int | None = 256,
                  seed: int = 0, log=print) -> dict:
    """Train ``model`` on ``train_ids`` until ``max_steps`` or ``time_limit`` seconds; returns a summary.

    Returns ``{"steps", "seconds", "cpu_seconds", "val_bpc", "history"}`` where history lists
    ``(step, seconds, train_bpc, val_bpc)`` at every evaluation; ``cpu_seconds`` is this process's CPU
    time over the training (all threads), a measure less sensitive than wall time to a busy machine.
    """
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}")
    rng = xp.random.default_rng(seed)
    opt = deepbox.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = deepbox.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, warmup)))
    model.train()

    def val_bpc():
        model.eval()
        b = bits_per_char(lambda x: logits_of(model, x), val_ids, seq_len, max_windows=val_windows)
        model.train()
        return b

    history = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    step = 0
    while step < max_steps and (time_limit is None or time.perf_counter() - t0 < time_limit):
        x, y = random_windows(train_ids, batch_size, seq_len, rng)
        logits = logits_of(model, x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        if clip:
            deepbox.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        step += 1
        if eval_every and step % eval_every == 0:
            v = val_bpc()
            elapsed = time.perf_counter() - t0
            history.append((step, elapsed, float(loss) / math.log(2), v))
            if log:
                log(f"step {step:5d}  {elapsed:6.1f}s  train {float(loss) / math.log(2):.3f} bpc  val {v:.3f} bpc")
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    v = val_bpc()
    if log:
        log(f"final: {step} steps in {seconds:.1f}s ({cpu:.1f}s CPU), validation {v:.3f} bits per character")
    return {"steps": step, "seconds": seconds, "cpu_seconds": cpu, "val_bpc": v, "history": history}

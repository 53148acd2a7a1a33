"""``deepbox train`` for character language models (char_lstm, char_gpt) on Shakespeare or a text file."""
from __future__ import annotations

import os

from deepbox.cli.common import CHECKPOINT_NAME, CLIError, build_model, duration, new_run_folder, say, write_json
from deepbox.cli.config import TrainConfig
from deepbox.cli.train_steps import _after_failure, _make_folder

__all__ = ["train_language_model"]

LM_STEPS_PER_EPOCH = 100
LM_SEQ_LEN = 128


def _lm_corpus(data: str):
    from deepbox.models.sequence import load_char_corpus

    path = None if data in ("shakespeare", TrainConfig.data) else data
    if path is not None and not os.path.isfile(path):
        # checked here: the corpus finder would otherwise fall back to Shakespeare without a word
        raise CLIError(f"text {data!r} cannot be loaded: no such file; expected 'shakespeare' or a UTF-8 .txt file")
    try:
        vocab, train_ids, val_ids = load_char_corpus(path)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as e:
        raise CLIError(f"text {data!r} cannot be loaded: {e}; expected 'shakespeare' or a UTF-8 .txt file") from None
    # training draws windows of LM_SEQ_LEN + 1 characters from the first 90 %, validation reads whole ones from the
    # last 10 %: both must hold at least one
    need = 10 * (LM_SEQ_LEN + 2)
    if len(val_ids) < LM_SEQ_LEN + 2 or len(train_ids) < LM_SEQ_LEN + 2:
        raise CLIError(f"text {data!r} has {len(train_ids) + len(val_ids):,} characters, too few for windows of "
                       f"{LM_SEQ_LEN}; expected at least {need:,} (the last 10 % are held out for validation)")
    return vocab, train_ids, val_ids


def train_language_model(cfg: TrainConfig, args, resume_dir: str | None) -> int:
    """Character language models (char_lstm, char_gpt) on Shakespeare or a text file.

    An "epoch" here is 100 optimiser steps on random windows of 128 characters; the result is
    validation bits per character. The run folder holds the checkpoint (weights, vocabulary and
    configuration), history.json, results.json, curves.png and a sample of generated text.
    """
    import deepbox

    if resume_dir:
        raise CLIError("--resume is not available for language models (their training loop keeps no optimiser "
                       "state in the run folder); start a new run")
    out = args.out or new_run_folder(cfg.model)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file; expected a folder for the run (a new one, or an empty one)")
    if os.path.isfile(os.path.join(out, CHECKPOINT_NAME)):
        raise CLIError(f"{out} already holds a run ({CHECKPOINT_NAME}); choose another --out")
    vocab, train_ids, val_ids = _lm_corpus(cfg.data)
    deepbox.manual_seed(cfg.seed)
    kwargs = {"vocab_size": len(vocab)}
    model = build_model(cfg.model, kwargs)
    steps = cfg.epochs * LM_STEPS_PER_EPOCH
    n_params = sum(p.numel() for p in model.parameters())
    say(f"deepbox train: {cfg.model} ({n_params:,} parameters) on {cfg.data}: {len(train_ids):,} training / "
        f"{len(val_ids):,} validation characters, vocabulary {len(vocab)}; {steps} steps of {cfg.batch_size} "
        f"windows of {LM_SEQ_LEN}, lr {cfg.lr:g}")
    say(f"run folder: {out}")
    created = _make_folder(out)
    try:
        _train_and_write(cfg, args, out, model, kwargs, vocab, train_ids, val_ids, steps)
    except BaseException:
        _after_failure(out, created, resumable=False)
        raise
    return 0


def _train_and_write(cfg, args, out, model, kwargs, vocab, train_ids, val_ids, steps) -> None:
    import deepbox
    from deepbox.models.sequence import train_char_lm
    from deepbox.viz import plot_history

    res = train_char_lm(model, train_ids, val_ids, seq_len=LM_SEQ_LEN, batch_size=cfg.batch_size, lr=cfg.lr,
                        weight_decay=cfg.weight_decay, max_steps=steps, eval_every=LM_STEPS_PER_EPOCH,
                        seed=cfg.seed, log=None if args.quiet else say)
    run_cfg = {"format": "deepbox.cli.run/1", "task": "language-model", "model": {"name": cfg.model, "kwargs": kwargs},
               "train": cfg.to_dict(), "data": {"name": cfg.data, "vocab": vocab.chars, "seq_len": LM_SEQ_LEN},
               "deepbox_version": deepbox.__version__}
    deepbox.save({"kind": "deepbox.cli.language-model", "model": model.state_dict(), "extra": run_cfg},
                 os.path.join(out, CHECKPOINT_NAME))
    write_json(os.path.join(out, "config.json"), run_cfg)
    hist = {"loss": [h[2] for h in res["history"]], "val_loss": [h[3] for h in res["history"]]}
    write_json(os.path.join(out, "history.json"), {"unit": "bits per character, every 100 steps", "history": hist})
    write_json(os.path.join(out, "results.json"), {"val_bpc": res["val_bpc"], "steps": res["steps"],
                                                    "seconds": res["seconds"]})
    if hist["loss"]:
        plot_history(hist, os.path.join(out, "curves.png"))
    model.eval()
    prompt = deepbox.tensor(vocab.encode("ROMEO:")[None, :]) if all(c in vocab.index for c in "ROMEO:") else \
        deepbox.tensor(train_ids[None, :8])
    with deepbox.no_grad():
        sample = vocab.decode(model.generate(prompt, 200, temperature=0.8)[0])
    with open(os.path.join(out, "sample.txt"), "w", encoding="utf-8") as f:
        f.write(sample + "\n")
    say(f"validation: {res['val_bpc']:.3f} bits per character after {res['steps']} steps in "
        f"{duration(res['seconds'])}")
    say(f"sample:\n{sample}")


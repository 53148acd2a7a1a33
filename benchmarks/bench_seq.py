"""Training-step time of the sequence models, deepbox vs PyTorch, on the same work in the same run.

    python benchmarks/bench_seq.py            # char-LSTM and the small transformer
    python benchmarks/bench_seq.py --only lstm --repeats 5

char-LSTM: batch 64, sequence 128, embedding 64, hidden 256, vocabulary 83.
transformer: char-GPT with 4 layers, d_model 128, 4 heads, feed-forward 512, sequence 128, batch 32.
A step is forward + cross-entropy + backward + Adam. PyTorch and NumPy's BLAS run with ``--threads``
threads (2 by default; 1 gives a comparison that a busy shared machine disturbs less). Each figure is the
median of ``--repeats`` timed steps after ``--warmup`` steps; the ratio is deepbox / PyTorch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import deepbox  # noqa: E402
import deepbox.nn.functional as DF  # noqa: E402
from deepbox.models.sequence import CharGPT, CharLSTM  # noqa: E402

V = 83


class TorchCharLSTM(torch.nn.Module):
    def __init__(self, vocab, embed, hidden):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.drop = torch.nn.Dropout(0.0)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, idx):
        out, _ = self.lstm(self.embed(idx))
        return self.head(self.drop(out))


class TorchCharGPT(torch.nn.Module):
    def __init__(self, vocab, block, d, n_layer, n_head):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Parameter(torch.randn(block, d) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(d, n_head, 4 * d, dropout=0.0, activation="gelu", batch_first=True,
                                                 norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.ln_f = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, idx):
        T = idx.shape[1]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(T)
        x = self.tok(idx) + self.pos[:T]
        return self.head(self.ln_f(self.blocks(x, mask=mask, is_causal=True)))


def time_steps(step, warmup, repeats):
    for _ in range(warmup):
        step()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def make_steps(d_model, t_model, d_fwd, t_fwd, B, T):
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))
    dx, dy = deepbox.tensor(x), deepbox.tensor(y.reshape(-1))
    tx, ty = torch.tensor(x), torch.tensor(y.reshape(-1))
    dopt = deepbox.optim.Adam(d_model.parameters(), lr=1e-3)
    topt = torch.optim.Adam(t_model.parameters(), lr=1e-3)

    def dstep():
        dopt.zero_grad()
        loss = DF.cross_entropy(d_fwd(dx).reshape(-1, V), dy)
        loss.backward()
        dopt.step()

    def tstep():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(t_fwd(tx).reshape(-1, V), ty)
        loss.backward()
        topt.step()

    return dstep, tstep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["lstm", "transformer"], default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for PyTorch and for NumPy's BLAS (via threadpoolctl when installed)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(args.threads, user_api="blas")
        blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        blas = "unknown (threadpoolctl not installed)"
    print(f"numpy {np.__version__} (BLAS: {blas}); torch {torch.__version__} with {torch.get_num_threads()} threads")
    rows = []
    if args.only in (None, "lstm"):
        B, T = 64, 128
        dm = CharLSTM(V, 64, 256)
        tm = TorchCharLSTM(V, 64, 256)
        dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
        ds, ts = make_steps(dm, tm, lambda i: dm(i)[0], tm, B, T)
        rows.append(("char-LSTM  B64 T128 E64 H256", time_steps(ds, args.warmup, args.repeats),
                     time_steps(ts, args.warmup, args.repeats)))
    if args.only in (None, "transformer"):
        B, T = 32, 128
        dm = CharGPT(V, T, 128, 4, 4)
        tm = TorchCharGPT(V, T, 128, 4, 4)
        ds, ts = make_steps(dm, tm, dm, tm, B, T)
        rows.append(("char-GPT   B32 T128 d128 L4 h4", time_steps(ds, args.warmup, args.repeats),
                     time_steps(ts, args.warmup, args.repeats)))
    print(f"{'training step':34s} {'deepbox ms':>11s} {'torch ms':>9s} {'ratio':>6s}")
    for name, d, t in rows:
        print(f"{name:34s} {d * 1e3:11.1f} {t * 1e3:9.1f} {d / t:6.2f}")


if __name__ == "__main__":
    main()

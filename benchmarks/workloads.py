"""The benchmark workloads, each written once against the PyTorch API and run with ``lib`` = deepbox or torch.

Both frameworks build the same architecture, draw the same data (real Fashion-MNIST when installed,
else deepbox's embedded subset), use the same batch size, optimiser and thread count, and time the
same work. Models are built from ``lib.nn`` layers here rather than from deepbox's zoo so that the
PyTorch twin is exactly the same network.
"""
from __future__ import annotations

import os

import numpy as np

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def load_fashion_mnist():
    """(x_train uint8 N×28×28, y_train, x_test, y_test, source) from the real files or the embedded subset."""
    files = [os.path.join(FMNIST_DIR, f"{p}-ubyte.gz") for p in
             ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")]
    if all(os.path.exists(f) for f in files):
        arrs = [_read_idx_gz(f) for f in files]
        return (*arrs, "Fashion-MNIST (60,000 train)")
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deepbox", "vision", "_data",
                        "fashion_mnist_small.npz")
    d = np.load(path)
    return d["train_images"], d["train_labels"], d["test_images"], d["test_labels"], "embedded subset (20,000 train)"


def _read_idx_gz(path):
    """A minimal IDX reader (uint8 data), so the benchmarks need nothing but NumPy to load their data."""
    import gzip
    import struct

    with gzip.open(path, "rb") as f:
        buf = f.read()
    ndim = buf[3]
    shape = struct.unpack(">" + "I" * ndim, buf[4:4 + 4 * ndim])
    return np.frombuffer(buf, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _images(n, quick):
    xtr, ytr, _, _, src = load_fashion_mnist()
    if quick:
        xtr, ytr = xtr[:n], ytr[:n]
    x = (xtr.astype(np.float32) / 255.0 - 0.2860) / 0.3530
    return x, ytr.astype(np.int64), src


# ----------------------------------------------------------------------------- models (same code for both)
def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def lenet5(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def bn_cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def basic_block(lib):
    """ResNet's basic block (two 3x3 convs with batch norm, the shortcut added before the last ReLU)."""
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = nn.Sequential()
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn1(self.conv1(x)).relu()
            out = self.bn2(self.conv2(out))
            return (out + self.short(x)).relu()

    return Block


def resnet20(lib):
    nn, Block = lib.nn, basic_block(lib)
    layers = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def resnet_blocks(lib):
    """ResNet-20's first stage alone: a stem conv and three 16-channel basic blocks at 28x28 (the layers
    where few channels make im2col memory-bound)."""
    nn, Block = lib.nn, basic_block(lib)
    return nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         Block(16, 16, 1), Block(16, 16, 1), Block(16, 16, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


# ----------------------------------------------------------------------------- workloads
def _train_step(lib, model, opt, x, y):
    F = lib.nn.functional

    def step():
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def image_step(lib, build, batch, quick, image_shape=(1, 28, 28)):
    lib.manual_seed(0)
    xs, ys, _ = _images(batch, True)
    model = build(lib)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    x = lib.tensor(xs[:batch].reshape((batch,) + image_shape))
    y = lib.tensor(ys[:batch])
    return _train_step(lib, model, opt, x, y), {"flops_per_call": None}


def image_epoch(lib, build, batch, quick, image_shape=(1, 28, 28)):
    """One epoch over the training set: a shuffled permutation sliced into batches (no DataLoader)."""
    lib.manual_seed(0)
    xs, ys, src = _images(4096 if quick else None, quick)
    n = len(xs)
    X = lib.tensor(xs.reshape((n,) + image_shape))
    Y = lib.tensor(ys)
    model = build(lib)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    F = lib.nn.functional
    perm = np.random.default_rng(0).permutation(n)

    def epoch():
        model.train()
        for i in range(0, n - batch + 1, batch):
            idx = lib.tensor(perm[i:i + batch])
            out = model(X[idx])
            loss = F.cross_entropy(out, Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch, {"data": src, "images": n}


def mlp_flops(batch):
    macs = 784 * 256 + 256 * 128 + 128 * 10
    return 3 * 2 * batch * macs  # forward + two backward GEMMs


def lenet_flops(batch):
    conv1 = 28 * 28 * 6 * 25
    conv2 = 10 * 10 * 16 * 6 * 25
    fc = 400 * 120 + 120 * 84 + 84 * 10
    return 3 * 2 * batch * (conv1 + conv2 + fc)


def inference(lib, batch, quick):
    lib.manual_seed(0)
    xs, _, _ = _images(max(batch, 256), True)
    model = lenet5(lib)
    model.eval()
    x = lib.tensor(xs[:batch].reshape(batch, 1, 28, 28))

    def run():
        with lib.no_grad():
            return model(x)

    return run, {"images_per_call": batch}


def tiny_graph(lib, quick):
    rng = np.random.default_rng(0)
    x, w, b = (lib.tensor(rng.standard_normal(64).astype(np.float32), requires_grad=True) for _ in range(3))

    def run():
        (x * w + b).relu().sum().backward()
        x.grad = w.grad = b.grad = None

    return run, {}


def _lstm_lm(lib, vocab, emb, hidden):
    """Embedding -> one LSTM layer -> a linear head over the vocabulary (a language model)."""
    nn = lib.nn

    class LSTMLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, hidden, batch_first=True)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, x):
            h, _ = self.lstm(self.emb(x))
            return self.head(h)

    return LSTMLM()


def char_lstm_step(lib, quick):
    lib.manual_seed(0)
    vocab, batch, seq = 83, 64, (32 if quick else 128)
    model = _lstm_lm(lib, vocab, 64, 256)
    return _token_step(lib, model, lib.optim.Adam(model.parameters(), lr=2e-3), vocab, batch, seq, clip=1.0), {}


def lstm_lm_step(lib, quick):
    """A word-level LSTM language model at small batch: the per-time-step cost dominates."""
    lib.manual_seed(0)
    vocab, batch, seq = 1000, 32, (16 if quick else 64)
    model = _lstm_lm(lib, vocab, 64, 256)
    return _token_step(lib, model, lib.optim.Adam(model.parameters(), lr=1e-3), vocab, batch, seq, clip=0.25), {}


def _token_step(lib, model, opt, vocab, batch, seq, clip=None):
    """A language-model training step on fixed random tokens: cross-entropy over every position."""
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.integers(0, vocab, (batch, seq)))
    y = lib.tensor(rng.integers(0, vocab, (batch, seq)))
    F = lib.nn.functional

    def step():
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    return step


def transformer_step(lib, quick):
    lib.manual_seed(0)
    nn = lib.nn
    vocab, d, heads, layers, batch, seq = 83, 128, 4, (2 if quick else 4), 32, (64 if quick else 128)

    class TinyGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(seq, d)
            layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True,
                                               activation="gelu")
            self.blocks = nn.TransformerEncoder(layer, layers)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq))

        def forward(self, x):
            pos = lib.arange(x.shape[1])
            h = self.tok(x) + self.pos(pos)
            h = self.blocks(h, mask=self.mask, is_causal=True)
            return self.head(self.norm(h))

    model = TinyGPT()
    return _token_step(lib, model, lib.optim.AdamW(model.parameters(), lr=3e-4), vocab, batch, seq), {}


def dataloader_throughput(lib, quick):
    """Images per second through a DataLoader with augmentation (random crop + flip) and 2 workers."""
    xs, ys, _ = _images(2048 if quick else 10000, True)
    data_mod = lib.utils.data

    class Augmented(data_mod.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y
            self.rng = np.random.default_rng(0)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            img = np.pad(self.x[i], 2)
            r, c = self.rng.integers(0, 5, 2)
            img = img[r:r + 28, c:c + 28]
            if self.rng.random() < 0.5:
                img = img[:, ::-1]
            return lib.tensor(np.ascontiguousarray(img)[None]), int(self.y[i])

    loader = data_mod.DataLoader(Augmented(xs, ys), batch_size=128, shuffle=True, num_workers=2,
                                 persistent_workers=True)

    def run():
        for _ in loader:
            pass

    return run, {"images_per_call": len(xs)}


WORKLOADS = {
    # name: (builder(lib, quick) -> (fn, meta), reps, description)
    "tiny_graph": (lambda lib, q: tiny_graph(lib, q), 2000, "relu(x*w+b).sum() fwd+bwd, 64 elements"),
    "mlp_step": (lambda lib, q: image_step(lib, mlp, 128, q), 50, "MLP 784-256-128-10 train step, batch 128, Adam"),
    "mlp_epoch": (lambda lib, q: image_epoch(lib, mlp, 128, q), 1, "MLP epoch, batch 128, Adam"),
    "lenet5_step": (lambda lib, q: image_step(lib, lenet5, 128, q), 20, "LeNet-5 train step, batch 128"),
    "lenet5_epoch": (lambda lib, q: image_epoch(lib, lenet5, 128, q), 1, "LeNet-5 epoch, batch 128"),
    "bn_cnn_step": (lambda lib, q: image_step(lib, bn_cnn, 128, q), 5,
                    "2x(conv3x3+BN+ReLU+pool) 32/64 + FC, batch 128"),
    "resnet_blocks_step": (lambda lib, q: image_step(lib, resnet_blocks, 64 if q else 128, q), 5,
                           "3 ResNet basic blocks, 16 ch, 28x28, BN, batch 128"),
    "resnet20_step": (lambda lib, q: image_step(lib, resnet20, 64 if q else 128, q), 3, "ResNet-20 train step, 28x28"),
    "char_lstm_step": (lambda lib, q: char_lstm_step(lib, q), 3, "char-LSTM step: batch 64, seq 128, hidden 256"),
    "lstm_lm_step": (lambda lib, q: lstm_lm_step(lib, q), 5, "LSTM LM step: batch 32, seq 64, emb 64, hidden 256"),
    "transformer_step": (lambda lib, q: transformer_step(lib, q), 3, "4-layer GPT step: d128, 4 heads, seq 128"),
    "lenet5_infer_b1": (lambda lib, q: inference(lib, 1, q), 300, "LeNet-5 inference, batch 1 (images/s)"),
    "lenet5_infer_b256": (lambda lib, q: inference(lib, 256, q), 20, "LeNet-5 inference, batch 256 (images/s)"),
    "dataloader": (lambda lib, q: dataloader_throughput(lib, q), 2, "DataLoader, crop+flip, 2 workers (images/s)"),
}

TARGETS = {"tiny_graph": 0.5, "mlp_step": 0.85, "mlp_epoch": 0.85, "lenet5_step": 0.7, "lenet5_epoch": 1.0,
           "bn_cnn_step": 0.7, "resnet_blocks_step": 1.0, "resnet20_step": 1.0, "lstm_lm_step": 1.0,
           "char_lstm_step": 0.9, "transformer_step": 0.9}

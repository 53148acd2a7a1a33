"""Sequence models: each overfits one small batch; sampling, vocabulary and corpus helpers behave."""
from __future__ import annotations

import numpy as np
import pytest

import deepbox
import deepbox.nn.functional as F
from deepbox.models import get_model, list_models
from deepbox.models.sequence import CharVocab, bits_per_char, load_char_corpus, random_windows, sample_next


def _fit(model, loss_fn, steps, lr):
    opt = deepbox.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
    return first, float(loss_fn())


def test_registry_lists_the_sequence_models():
    assert {"char_lstm", "char_gpt"} <= set(list_models("language-model"))
    assert "row_lstm" in list_models("sequence-classification")
    assert "seq2seq_transformer" in list_models("seq2seq")


@pytest.mark.parametrize("name,kw", [("char_lstm", dict(embed_dim=16, hidden_size=48)),
                                     ("char_gpt", dict(block_size=16, d_model=32, n_layer=2, n_head=2))])
def test_language_models_overfit_a_batch(name, kw):
    deepbox.manual_seed(0)
    V = 11
    model = get_model(name, vocab_size=V, **kw)
    x = deepbox.randint(0, V, (4, 16))
    y = deepbox.randint(0, V, (4, 16))
    fwd = (lambda: model(x)[0]) if name == "char_lstm" else (lambda: model(x))
    first, last = _fit(model, lambda: F.cross_entropy(fwd().reshape(-1, V), y.reshape(-1)), 150, 1e-2)
    assert first > 2.0 and last < 0.1, (first, last)
    out = model.generate(x[:2, :3], 5, temperature=0.5, top_k=3)
    assert tuple(out.shape) == (2, 8) and out.dtype == deepbox.int64
    np.testing.assert_array_equal(out._data[:, :3], x._data[:2, :3])


def test_row_lstm_overfits_a_batch():
    deepbox.manual_seed(0)
    model = get_model("row_lstm", hidden_size=32)
    x = deepbox.randn(16, 1, 28, 28)
    y = deepbox.randint(0, 10, (16,))
    first, last = _fit(model, lambda: F.cross_entropy(model(x), y), 80, 1e-2)
    assert first > 1.5 and last < 0.05, (first, last)
    with pytest.raises(ValueError, match="one-channel"):
        model(deepbox.randn(2, 3, 28, 28))


def test_seq2seq_overfits_and_decodes_greedily():
    deepbox.manual_seed(0)
    model = get_model("seq2seq_transformer", src_vocab=8, tgt_vocab=8, d_model=32, dim_feedforward=64)
    rng = np.random.default_rng(0)
    src = rng.integers(3, 8, (6, 5))
    tgt = src[:, ::-1].copy()
    tin = deepbox.tensor(np.concatenate([np.ones((6, 1), np.int64), tgt[:, :-1]], 1))
    s, t = deepbox.tensor(src), deepbox.tensor(tgt)
    first, last = _fit(model, lambda: F.cross_entropy(model(s, tin).reshape(-1, 8), t.reshape(-1)), 150, 3e-3)
    assert last < 0.05, (first, last)
    np.testing.assert_array_equal(model.greedy_decode(s, 1, 5)._data, tgt)


def test_sample_next():
    logits = deepbox.tensor(np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])))
    assert sample_next(logits, temperature=0).tolist() == [2, 0]
    g = deepbox.Generator().manual_seed(0)
    draws = np.array([sample_next(logits, top_k=1, generator=g).tolist() for _ in range(20)])
    assert np.all(draws == [2, 0])
    draws = np.array([sample_next(logits, generator=g).tolist()[0] for _ in range(3000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 3000, [0.1, 0.2, 0.7], atol=0.03)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=-1)


def test_vocab_corpus_and_bits_per_char():
    v = CharVocab("hello world")
    assert v.decode(v.encode("world")) == "world"
    assert CharVocab.from_state_dict(v.state_dict()).chars == v.chars
    with pytest.raises(KeyError, match="'z' is not in the vocabulary"):
        v.encode("z")
    vocab, tr, va = load_char_corpus(max_chars=10_000)
    assert len(vocab) == 83 and len(tr) == 9_000 and len(va) == 1_000
    x, y = random_windows(tr, 3, 8, np.random.default_rng(0))
    np.testing.assert_array_equal(x._data[:, 1:], y._data[:, :-1])
    # a model that predicts the uniform distribution scores log2(V) bits per character
    uniform = lambda inp: deepbox.zeros(tuple(inp.shape) + (len(vocab),))
    assert abs(bits_per_char(uniform, va, 16) - np.log2(83)) < 1e-5


def test_char_gpt_is_causal():
    deepbox.manual_seed(0)
    model = get_model("char_gpt", vocab_size=11, block_size=12, d_model=16, n_layer=2, n_head=2).eval()
    x = deepbox.randint(0, 11, (2, 12))
    x2 = x._data.copy()
    x2[:, 7:] = (x2[:, 7:] + 3) % 11
    a, b = model(x)._data, model(deepbox.tensor(x2))._data
    np.testing.assert_array_equal(a[:, :7], b[:, :7])
    assert not np.allclose(a[:, 7:], b[:, 7:])
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(deepbox.randint(0, 11, (1, 13)))

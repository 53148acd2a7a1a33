"""A character-level LSTM language model (Karpathy's char-rnn, in PyTorch's building blocks)."""
from __future__ import annotations

import deepbox
import deepbox.nn as nn
from deepbox.models.registry import register_model
from deepbox.models.sequence.sampling import sample_next

__all__ = ["CharLSTM", "char_lstm"]


class CharLSTM(nn.Module):
    """Embedding → LSTM (batch-first) → Linear over the vocabulary.

    Args:
        vocab_size: number of distinct characters V.
        embed_dim: embedding width. hidden_size: LSTM width. num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and before the output layer.

    Shape:
        input (B, T) int64 ids; returns logits (B, T, V) and the final ``(h, c)`` state.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(self.drop(out)), state

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator=None):
        """Continue ``prompt_ids`` (B, T) by ``max_new_tokens`` sampled ids; returns (B, T + max_new_tokens)."""
        was_training = self.training
        self.eval()
        out = [prompt_ids]
        with deepbox.no_grad():
            logits, state = self(prompt_ids)
            for _ in range(max_new_tokens):
                nxt = sample_next(logits[:, -1], temperature, top_k, generator).unsqueeze(1)
                out.append(nxt)
                logits, state = self(nxt, state)
        self.train(was_training)
        return deepbox.cat(out, 1)


@register_model("char_lstm", task="language-model", summary="character-level LSTM language model")
def char_lstm(vocab_size: int = 83, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
              dropout: float = 0.0) -> CharLSTM:
    """Character-level LSTM language model (embedding 64, hidden 256 by default)."""
    return CharLSTM(vocab_size, embed_dim, hidden_size, num_layers, dropout)

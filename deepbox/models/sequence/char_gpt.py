"""A small GPT-style decoder-only transformer for characters."""
from __future__ import annotations

import deepbox
import deepbox.nn as nn
from deepbox.models.registry import register_model
from deepbox.models.sequence.sampling import sample_next

__all__ = ["CharGPT", "char_gpt"]


class CharGPT(nn.Module):
    """Token embedding + learned positions → pre-norm causal transformer blocks → LayerNorm → Linear.

    Each block is ``nn.TransformerEncoderLayer(norm_first=True, activation='gelu')`` run with a causal
    mask, which is exactly a GPT decoder block (self-attention only, no cross-attention).

    Args:
        vocab_size, block_size (longest context), d_model, n_layer, n_head, dim_feedforward (default 4 d_model),
        dropout.

    Shape:
        input (B, T) int64 with T <= block_size; returns logits (B, T, V).
    """

    def __init__(self, vocab_size: int, block_size: int = 128, d_model: int = 128, n_layer: int = 4,
                 n_head: int = 4, dim_feedforward: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.LearnedPositionalEncoding(d_model, max_len=block_size, dropout=dropout, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, n_head, dim_feedforward or 4 * d_model, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layer)
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self._masks: dict = {}

    def _causal_mask(self, T):
        if T not in self._masks:
            self._masks[T] = nn.Transformer.generate_square_subsequent_mask(T)
        return self._masks[T]

    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"CharGPT: sequence of {T} tokens exceeds block_size={self.block_size}")
        x = self.pos(self.tok(idx))
        x = self.blocks(x, mask=self._causal_mask(T), is_causal=True)
        return self.head(self.ln_f(x))

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator=None):
        """Continue ``prompt_ids`` (B, T) by ``max_new_tokens`` sampled ids (context cropped to block_size)."""
        was_training = self.training
        self.eval()
        ids = prompt_ids
        with deepbox.no_grad():
            for _ in range(max_new_tokens):
                logits = self(ids[:, -self.block_size :])
                nxt = sample_next(logits[:, -1], temperature, top_k, generator).unsqueeze(1)
                ids = deepbox.cat([ids, nxt], 1)
        self.train(was_training)
        return ids


@register_model("char_gpt", task="language-model", summary="small GPT-style character transformer")
def char_gpt(vocab_size: int = 83, block_size: int = 128, d_model: int = 128, n_layer: int = 4, n_head: int = 4,
             dropout: float = 0.0) -> CharGPT:
    """Small decoder-only transformer over characters (4 layers, d_model 128, 4 heads by default)."""
    return CharGPT(vocab_size, block_size, d_model, n_layer, n_head, dropout=dropout)

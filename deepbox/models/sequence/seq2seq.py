"""An encoder-decoder transformer for token sequences, with greedy decoding."""
from __future__ import annotations

import deepbox
import deepbox.nn as nn
from deepbox.models.registry import register_model

__all__ = ["Seq2SeqTransformer", "seq2seq_transformer"]


class Seq2SeqTransformer(nn.Module):
    """Token embeddings (scaled by sqrt(d_model)) + sinusoidal positions → ``nn.Transformer`` → Linear.

    Args:
        src_vocab, tgt_vocab: vocabulary sizes. d_model, nhead, num_encoder_layers, num_decoder_layers,
        dim_feedforward, dropout: as ``nn.Transformer``. max_len: longest sequence.

    Shape:
        src (B, S), tgt (B, T) int64 (batch-first); returns logits (B, T, tgt_vocab). The decoder is causal.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64, nhead: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.0, max_len: int = 64) -> None:
        super().__init__()
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len=max_len, dropout=dropout, batch_first=True)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward,
                                          dropout, batch_first=True, norm_first=True)
        self.head = nn.Linear(d_model, tgt_vocab)

    def _embed(self, emb, ids):
        return self.pos(emb(ids) * (self.d_model ** 0.5))

    def encode(self, src, src_key_padding_mask=None):
        return self.transformer.encoder(self._embed(self.src_embed, src), src_key_padding_mask=src_key_padding_mask)

    def decode(self, tgt, memory, memory_key_padding_mask=None):
        T = tgt.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        out = self.transformer.decoder(self._embed(self.tgt_embed, tgt), memory, tgt_mask=mask, tgt_is_causal=True,
                                       memory_key_padding_mask=memory_key_padding_mask)
        return self.head(out)

    def forward(self, src, tgt, src_key_padding_mask=None):
        return self.decode(tgt, self.encode(src, src_key_padding_mask), src_key_padding_mask)

    def greedy_decode(self, src, bos: int, max_len: int, src_key_padding_mask=None):
        """Decode (B, S) sources greedily, starting from ``bos``; returns (B, max_len) ids without the bos."""
        was_training = self.training
        self.eval()
        with deepbox.no_grad():
            memory = self.encode(src, src_key_padding_mask)
            ys = deepbox.full((src.shape[0], 1), bos, dtype=deepbox.int64)
            for _ in range(max_len):
                logits = self.decode(ys, memory, src_key_padding_mask)
                ys = deepbox.cat([ys, logits[:, -1].argmax(-1, keepdim=True)], 1)
        self.train(was_training)
        return ys[:, 1:]


@register_model("seq2seq_transformer", task="seq2seq", summary="encoder-decoder transformer, greedy decoding")
def seq2seq_transformer(src_vocab: int = 13, tgt_vocab: int = 13, d_model: int = 64, nhead: int = 4,
                        num_encoder_layers: int = 2, num_decoder_layers: int = 2, dim_feedforward: int = 128,
                        dropout: float = 0.0, max_len: int = 64) -> Seq2SeqTransformer:
    """Small encoder-decoder transformer for token sequences (d_model 64, 2+2 layers)."""
    return Seq2SeqTransformer(src_vocab, tgt_vocab, d_model, nhead, num_encoder_layers, num_decoder_layers,
                              dim_feedforward, dropout, max_len)

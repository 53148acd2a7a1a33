"""Sequence models: character language models (LSTM and GPT), a row-by-row image LSTM, a seq2seq transformer."""
from deepbox.models.sequence.char_gpt import CharGPT, char_gpt
from deepbox.models.sequence.char_lstm import CharLSTM, char_lstm
from deepbox.models.sequence.row_lstm import RowLSTM, row_lstm
from deepbox.models.sequence.sampling import sample_next
from deepbox.models.sequence.seq2seq import Seq2SeqTransformer, seq2seq_transformer
from deepbox.models.sequence.text import CharVocab, bits_per_char, load_char_corpus, random_windows

__all__ = ["CharLSTM", "char_lstm", "CharGPT", "char_gpt", "RowLSTM", "row_lstm", "Seq2SeqTransformer",
           "seq2seq_transformer", "CharVocab", "load_char_corpus", "random_windows", "bits_per_char", "sample_next"]

"""Sequence models: character language models (LSTM and GPT), a row-by-row image LSTM, a seq2seq transformer.

Registered names (``deepbox.models.get_model``): ``char_lstm`` and ``char_gpt`` (task "language-model"),
``row_lstm`` ("sequence-classification"), ``seq2seq_transformer`` ("seq2seq").

Train and sample from the command line with the example scripts (each takes ``--quick`` for a smoke
test and ``--help`` for its options)::

    python examples/char_lstm.py --time-limit 180        # Shakespeare, prints validation bits per char
    python examples/char_gpt.py --time-limit 180 --top-k 10
    python examples/mnist_row_lstm.py                    # MNIST-10k read row by row, test accuracy
    python examples/seq2seq_reverse.py                   # reverse digit strings, exact-match accuracy
"""
from deepbox.models.sequence.char_gpt import CharGPT, char_gpt
from deepbox.models.sequence.char_lstm import CharLSTM, char_lstm
from deepbox.models.sequence.lm_training import logits_of, train_char_lm
from deepbox.models.sequence.row_lstm import RowLSTM, row_lstm
from deepbox.models.sequence.sampling import sample_next
from deepbox.models.sequence.seq2seq import Seq2SeqTransformer, seq2seq_transformer
from deepbox.models.sequence.text import CharVocab, bits_per_char, load_char_corpus, random_windows

__all__ = ["CharLSTM", "char_lstm", "CharGPT", "char_gpt", "RowLSTM", "row_lstm", "Seq2SeqTransformer",
           "seq2seq_transformer", "CharVocab", "load_char_corpus", "random_windows", "bits_per_char", "sample_next",
           "train_char_lm", "logits_of"]

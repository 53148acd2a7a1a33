"""Sequence classification: an image read row by row (28 steps of 28 pixels) by an LSTM."""
from __future__ import annotations

import deepbox.nn as nn
from deepbox.models.registry import register_model

__all__ = ["RowLSTM", "row_lstm"]


class RowLSTM(nn.Module):
    """LSTM over the rows of an image; the last hidden state goes through a Linear classifier.

    Shape: input (B, 1, H, W) or (B, H, W); each of the H rows is one step of W features. Output (B, classes).
    """

    def __init__(self, input_size: int = 28, hidden_size: int = 128, num_layers: int = 1,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.input_size = input_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        if x.dim() == 4:
            if x.shape[1] != 1:
                raise ValueError(f"RowLSTM reads one-channel images, got {x.shape[1]} channels")
            x = x.squeeze(1)
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"RowLSTM: expected (B, rows, {self.input_size}) images, got {tuple(x.shape)}")
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


@register_model("row_lstm", task="sequence-classification", summary="LSTM reading images row by row")
def row_lstm(input_size: int = 28, hidden_size: int = 128, num_layers: int = 1, num_classes: int = 10,
             in_channels: int = 1) -> RowLSTM:
    """LSTM that reads a 28x28 image as 28 steps of 28 pixels (hidden 128)."""
    if in_channels != 1:
        raise ValueError(f"row_lstm reads one-channel images, got in_channels={in_channels}")
    return RowLSTM(input_size, hidden_size, num_layers, num_classes)

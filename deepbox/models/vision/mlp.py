"""A multi-layer perceptron over flattened images."""
from __future__ import annotations

from deepbox import nn
from deepbox.models.registry import register_model

__all__ = ["MLP", "mlp"]


class MLP(nn.Module):
    """Fully connected classifier: flatten, then ``Linear + ReLU (+ Dropout)`` per hidden layer.

    The multi-layer perceptron trained by back-propagation (Rumelhart, Hinton & Williams,
    "Learning representations by back-propagating errors", Nature 1986).

    Args:
        in_channels: image channels.
        num_classes: output logits.
        image_size: side of the (square) input image, or an ``(H, W)`` pair.
        hidden: widths of the hidden layers (default 784-256-128-10 on 28x28 inputs).
        dropout: dropout probability after each hidden activation (0 disables it).

    Shape: ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size=28, hidden=(256, 128),
                 dropout: float = 0.0) -> None:
        super().__init__()
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * h * w
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


@register_model("mlp", summary="MLP 784-256-128-10 on flattened images (Rumelhart et al. 1986)")
def mlp(in_channels: int = 1, num_classes: int = 10, image_size=28, hidden=(256, 128), dropout: float = 0.0) -> MLP:
    """MLP 784-256-128-10 on flattened images (Rumelhart et al. 1986)."""
    return MLP(in_channels, num_classes, image_size, hidden, dropout)

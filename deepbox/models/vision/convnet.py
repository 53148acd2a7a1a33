"""The two-block batch-normalised CNN baseline."""
from __future__ import annotations

from deepbox import nn
from deepbox.models.registry import register_model

__all__ = ["ConvNet", "convnet"]


class ConvNet(nn.Module):
    """``2 x (conv3x3 + BatchNorm + ReLU + 2x2 max pool)`` with 32/64 channels, then FC 128 and the logits.

    The "BN CNN" baseline of deepbox's benchmarks: a small VGG-style network (Simonyan & Zisserman 2015)
    with batch normalisation (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training
    by Reducing Internal Covariate Shift", ICML 2015). The convolutions carry no bias (BatchNorm's
    shift makes it redundant) when ``conv_bias=False``; the default keeps PyTorch's Conv2d bias.

    Args:
        in_channels, num_classes: input channels and output logits.
        image_size: input side (28: FC 3136-128).
        channels: the two blocks' widths.
        hidden: width of the hidden fully connected layer.
        dropout: dropout before the last layer (0 disables it).

    Shape: ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, channels=(32, 64),
                 hidden: int = 128, dropout: float = 0.0, conv_bias: bool = True) -> None:
        super().__init__()
        c1, c2 = channels
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=conv_bias), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=conv_bias), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        )
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("convnet", summary="2x(conv3x3+BN+ReLU+pool) 32/64 channels + FC 128 (BN CNN baseline)")
def convnet(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, channels=(32, 64), hidden: int = 128,
            dropout: float = 0.0, conv_bias: bool = True) -> ConvNet:
    """2x(conv3x3+BN+ReLU+pool) 32/64 channels + FC 128 (BN CNN baseline)."""
    return ConvNet(in_channels, num_classes, image_size, channels, hidden, dropout, conv_bias)

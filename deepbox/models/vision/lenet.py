"""LeNet-5 for 28x28 images."""
from __future__ import annotations

from deepbox import nn
from deepbox.models.registry import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
    recognition", Proc. IEEE 1998), laid out for 28x28 inputs.

    C1: 6 5x5 convolutions with padding 2 (the paper's 32x32 input is MNIST's 28x28 padded by 2),
    S2: 2x2 subsampling, C3: 16 5x5 convolutions (fully connected to S2 rather than the paper's
    sparse table), S4: 2x2 subsampling, C5: 120 units, F6: 84 units, then ``num_classes`` logits
    (a linear layer in place of the Gaussian RBF output). ``activation='relu'`` with max pooling
    (the default) is the modern variant; ``activation='tanh', pool='avg'`` is closest to the paper.

    Args:
        in_channels, num_classes: input channels and output logits.
        activation: ``'relu'`` or ``'tanh'``.
        pool: ``'max'`` or ``'avg'``.
        image_size: input side (28 for MNIST/Fashion-MNIST; 32 works as the paper's unpadded input).

    Shape: ``(N, in_channels, 28, 28)`` → ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "relu", pool: str = "max",
                 image_size: int = 28) -> None:
        super().__init__()
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh}
        pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
        if activation not in acts:
            raise ValueError(f"LeNet5: activation must be 'relu' or 'tanh', got {activation!r}")
        if pool not in pools:
            raise ValueError(f"LeNet5: pool must be 'max' or 'avg', got {pool!r}")
        act, pl = acts[activation], pools[pool]
        pad = 2 if image_size == 28 else 0
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet5: image_size {image_size} is too small")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad), act(), pl(2),
            nn.Conv2d(6, 16, 5), act(), pl(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("lenet5", summary="LeNet-5 for 28x28 images (LeCun et al. 1998)")
def lenet5(in_channels: int = 1, num_classes: int = 10, activation: str = "relu", pool: str = "max",
           image_size: int = 28) -> LeNet5:
    """LeNet-5 for 28x28 images (LeCun et al. 1998)."""
    return LeNet5(in_channels, num_classes, activation, pool, image_size)

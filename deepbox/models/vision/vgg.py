"""VGG-style networks for small images."""
from __future__ import annotations

from deepbox import nn
from deepbox.models.registry import register_model

__all__ = ["VGG", "vgg11", "vgg13", "vgg16", "vgg_small", "VGG_CONFIGS"]

# numbers are 3x3 conv widths, "M" a 2x2 max pool (Simonyan & Zisserman 2015, Table 1)
VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg_small": [32, 32, "M", 64, 64, "M", 128, 128, "M"],
}


class VGG(nn.Module):
    """VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015) adapted to 28x28/32x32 inputs, CIFAR-style.

    Stacks of 3x3 convolutions (padding 1), each followed by BatchNorm (Ioffe & Szegedy 2015,
    ``batch_norm=True``) and ReLU, with 2x2 max pooling between stages. A pool that would shrink
    the feature map below 1x1 is skipped (28x28 inputs reach 1x1 after four pools), and the
    ImageNet head (two 4096-wide layers) is replaced by global average pooling, optional dropout
    and one linear layer, as is usual for small images.

    Args:
        cfg: a name in ``VGG_CONFIGS`` or a list of widths and ``"M"``.
        in_channels, num_classes: input channels and output logits.
        image_size: input side, used to skip pools that the input is too small for.
        batch_norm: BatchNorm after every convolution.
        dropout: dropout before the classifier (0 disables it).

    Shape: ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    def __init__(self, cfg="vgg11", in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(cfg, str):
            if cfg not in VGG_CONFIGS:
                raise ValueError(f"VGG: unknown config {cfg!r}; known: {', '.join(VGG_CONFIGS)}")
            cfg = VGG_CONFIGS[cfg]
        layers: list[nn.Module] = []
        c, side = in_channels, image_size
        for v in cfg:
            if v == "M":
                if side >= 2:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
                continue
            layers.append(nn.Conv2d(c, v, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            c = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(c, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def _builder(name: str, summary: str):
    def build(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, batch_norm: bool = True,
              dropout: float = 0.0) -> VGG:
        return VGG(name, in_channels, num_classes, image_size, batch_norm, dropout)
    build.__name__ = name
    build.__doc__ = summary + "\n\nSee ``VGG`` for the arguments."
    return register_model(name, summary=summary)(build)


vgg11 = _builder("vgg11", "VGG-11 with BatchNorm for small images (Simonyan & Zisserman 2015)")
vgg13 = _builder("vgg13", "VGG-13 with BatchNorm for small images (Simonyan & Zisserman 2015)")
vgg16 = _builder("vgg16", "VGG-16 with BatchNorm for small images (Simonyan & Zisserman 2015)")
vgg_small = _builder("vgg_small", "VGG-style 32-32-M-64-64-M-128-128-M with BatchNorm, for 28x28/32x32 inputs")

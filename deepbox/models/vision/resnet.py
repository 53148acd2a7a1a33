"""Residual networks: CIFAR-style ResNet-20/32/56 and ResNet-18 adapted to small inputs."""
from __future__ import annotations

from deepbox import nn
from deepbox.models.registry import register_model
from deepbox.nn import functional as F

__all__ = ["BasicBlock", "ResNet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "resnet34"]


class _PadShortcut(nn.Module):
    """Option A shortcut: subsample by the stride and zero-pad the new channels (no parameters)."""

    def __init__(self, stride: int, extra: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = extra

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        lo = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra}"


class BasicBlock(nn.Module):
    """``conv3x3-BN-ReLU-conv3x3-BN`` plus a shortcut, then ReLU (He et al. 2016, Fig. 2).

    Args:
        in_planes, planes: input and output channels.
        stride: stride of the first convolution (and of the shortcut).
        shortcut: ``'A'`` (identity with zero-padded channels, CIFAR ResNets) or ``'B'``
            (1x1 convolution + BN projection when the shape changes).
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and in_planes == planes:
            self.shortcut = nn.Sequential()
        elif shortcut == "A":
            self.shortcut = _PadShortcut(stride, planes - in_planes)
        elif shortcut == "B":
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))
        else:
            raise ValueError(f"BasicBlock: shortcut must be 'A' or 'B', got {shortcut!r}")

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Residual network (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition",
    CVPR 2016) for small images: a 3x3 stem without max pooling, stages of ``BasicBlock``s whose
    first block halves the resolution (except the first stage), global average pooling and a
    linear classifier. Weights are He-initialised (kaiming_normal_, fan_out) and BN starts at
    (1, 0), as in the paper.

    Args:
        num_blocks: blocks per stage, e.g. ``(3, 3, 3)`` for ResNet-20.
        widths: channels per stage, e.g. ``(16, 32, 64)`` (CIFAR) or ``(64, 128, 256, 512)``.
        in_channels, num_classes: input channels and output logits.
        shortcut: ``'A'`` or ``'B'`` (see ``BasicBlock``).

    Shape: ``(N, in_channels, H, W)`` → ``(N, num_classes)``.
    """

    def __init__(self, num_blocks=(3, 3, 3), widths=(16, 32, 64), in_channels: int = 1, num_classes: int = 10,
                 shortcut: str = "A") -> None:
        super().__init__()
        if len(num_blocks) != len(widths):
            raise ValueError(f"ResNet: num_blocks {num_blocks} and widths {widths} must have the same length")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        in_planes = widths[0]
        for i, (n, w) in enumerate(zip(num_blocks, widths)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_planes, w, stride, shortcut))
                in_planes = w
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.pool(self.layers(out))
        return self.fc(out.flatten(1))


def _cifar(name: str, depth: int):
    n = (depth - 2) // 6
    summary = f"ResNet-{depth} CIFAR-style, 16/32/64 channels, {n} blocks per stage (He et al. 2016)"

    def build(in_channels: int = 1, num_classes: int = 10, shortcut: str = "A") -> ResNet:
        return ResNet((n, n, n), (16, 32, 64), in_channels, num_classes, shortcut)
    build.__name__ = name
    build.__doc__ = summary + "\n\nSee ``ResNet`` for the arguments."
    return register_model(name, summary=summary)(build)


resnet20 = _cifar("resnet20", 20)
resnet32 = _cifar("resnet32", 32)
resnet44 = _cifar("resnet44", 44)
resnet56 = _cifar("resnet56", 56)


@register_model("resnet18", summary="ResNet-18 for small inputs: 3x3 stem, no max pool (He et al. 2016)")
def resnet18(in_channels: int = 1, num_classes: int = 10, shortcut: str = "B") -> ResNet:
    """ResNet-18 for small inputs: 3x3 stem, no max pool (He et al. 2016)."""
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), in_channels, num_classes, shortcut)


@register_model("resnet34", summary="ResNet-34 for small inputs: 3x3 stem, no max pool (He et al. 2016)")
def resnet34(in_channels: int = 1, num_classes: int = 10, shortcut: str = "B") -> ResNet:
    """ResNet-34 for small inputs: 3x3 stem, no max pool (He et al. 2016)."""
    return ResNet((3, 4, 6, 3), (64, 128, 256, 512), in_channels, num_classes, shortcut)

"""A small U-Net for segmentation."""
from __future__ import annotations

import deepbox
from deepbox import nn
from deepbox.models.registry import register_model
from deepbox.nn import functional as F

__all__ = ["UNet", "unet"]


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
    Segmentation", MICCAI 2015), small: ``depth`` down-sampling steps from ``base`` channels,
    doubling per step. Convolutions are padded (the output has the input's size) and followed by
    BatchNorm; up-sampling is a 2x2 transposed convolution, concatenated with the skip connection
    (zero-padded to the skip's size when the input side is not divisible by ``2**depth``).

    Args:
        in_channels: input channels.
        num_classes: output channels (per-pixel logits).
        base: channels of the first level.
        depth: number of 2x2 max-pool / up-convolution steps.

    Shape: ``(N, in_channels, H, W)`` → ``(N, num_classes, H, W)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet: depth must be at least 1, got {depth}")
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.inc = _double_conv(in_channels, widths[0])
        self.pool = nn.MaxPool2d(2)
        self.down = nn.ModuleList([_double_conv(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.outc = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for block in self.down:
            skips.append(block(self.pool(skips[-1])))
        out = skips.pop()
        for up, dec in zip(self.up, self.dec):
            skip = skips.pop()
            out = up(out)
            dh, dw = skip.shape[2] - out.shape[2], skip.shape[3] - out.shape[3]
            if dh or dw:
                out = F.pad(out, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
            out = dec(deepbox.cat([skip, out], 1))
        return self.outc(out)


@register_model("unet", task="segmentation", summary="Small U-Net with BatchNorm (Ronneberger et al. 2015)")
def unet(in_channels: int = 1, num_classes: int = 2, base: int = 16, depth: int = 3) -> UNet:
    """Small U-Net with BatchNorm (Ronneberger et al. 2015)."""
    return UNet(in_channels, num_classes, base, depth)

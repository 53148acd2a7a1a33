"""DCGAN generator and discriminator for 28x28 images."""
from __future__ import annotations

import deepbox
from deepbox import nn
from deepbox.models.registry import register_model

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "dcgan_generator", "dcgan_discriminator", "dcgan_init_"]


def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", ICLR 2016), sized for 28x28 images.

    Following the paper's guidelines: no pooling or fully connected hidden layers, fractionally
    strided (transposed) convolutions that upsample, batch norm in every layer but the output,
    ReLU inside and tanh at the output. ``z`` (N, latent_dim) → 4c x 7x7 → 2c x 14x14 → C x 28x28.

    Args:
        latent_dim: size of the noise vector z.
        base_channels: ``c`` above.
        out_channels: image channels.

    Shape: ``(N, latent_dim)`` or ``(N, latent_dim, 1, 1)`` → ``(N, out_channels, 28, 28)`` in [-1, 1].
    """

    def __init__(self, latent_dim: int = 64, base_channels: int = 32, out_channels: int = 1) -> None:
        super().__init__()
        if latent_dim < 1 or base_channels < 1:
            raise ValueError(f"DCGANGenerator: latent_dim and base_channels must be >= 1, got "
                             f"{latent_dim}, {base_channels}")
        c = base_channels
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 4 * c, 7, stride=1, padding=0, bias=False),  # 1 → 7
            nn.BatchNorm2d(4 * c), nn.ReLU(),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1, bias=False),  # 7 → 14
            nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, out_channels, 4, stride=2, padding=1),  # 14 → 28
            nn.Tanh(),
        )
        dcgan_init_(self)

    def forward(self, z):
        shape = tuple(z.shape)
        if not (len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1))) or shape[1] != self.latent_dim:
            raise ValueError(f"DCGANGenerator: expected z of shape (N, {self.latent_dim}) or "
                             f"(N, {self.latent_dim}, 1, 1) for latent_dim={self.latent_dim}, got {shape}")
        return self.net(z.reshape(shape[0], shape[1], 1, 1))

    def sample(self, n: int, generator=None):
        """``n`` images from noise, in [-1, 1], without a graph (uses the current train/eval mode)."""
        if n < 1:
            raise ValueError(f"DCGANGenerator.sample: n must be >= 1, got {n}")
        with deepbox.no_grad():
            return self(deepbox.randn(n, self.latent_dim, generator=generator))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}"


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator for 28x28 images (Radford et al. 2016): strided convolutions in place of
    pooling, LeakyReLU(0.2), batch norm on the hidden layer (not on the input layer), and one logit
    per image (use ``binary_cross_entropy_with_logits``). C x 28 → c x 14 → 2c x 7 → 1.

    Args:
        in_channels: image channels.
        base_channels: ``c`` above.

    Shape: ``(N, in_channels, 28, 28)`` → ``(N,)`` logits (real vs generated).
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32) -> None:
        super().__init__()
        if base_channels < 1:
            raise ValueError(f"DCGANDiscriminator: base_channels must be >= 1, got {base_channels}")
        c = base_channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, stride=2, padding=1),  # 28 → 14
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False),  # 14 → 7
            nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 1, 7, stride=1, padding=0),  # 7 → 1
            nn.Flatten(0),
        )
        dcgan_init_(self)

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[2:]) != (28, 28):
            raise ValueError(f"DCGANDiscriminator: expected images (N, C, 28, 28), got {tuple(x.shape)}")
        return self.net(x)


@register_model("dcgan_generator", task="generative", summary="DCGAN generator for 28x28 images (Radford et al. 2016)")
def dcgan_generator(latent_dim: int = 64, base_channels: int = 32, out_channels: int = 1) -> DCGANGenerator:
    """DCGAN generator for 28x28 images (Radford et al. 2016)."""
    return DCGANGenerator(latent_dim, base_channels, out_channels)


@register_model("dcgan_discriminator", task="generative",
                summary="DCGAN discriminator for 28x28 images (Radford et al. 2016)")
def dcgan_discriminator(in_channels: int = 1, base_channels: int = 32) -> DCGANDiscriminator:
    """DCGAN discriminator for 28x28 images (Radford et al. 2016)."""
    return DCGANDiscriminator(in_channels, base_channels)

"""A convolutional autoencoder for 28x28 images."""
from __future__ import annotations

import deepbox
from deepbox import nn
from deepbox.models.registry import register_model

__all__ = ["ConvAutoencoder", "conv_autoencoder", "ConvEncoder", "ConvDecoder"]


def _check_side(name: str, image_size: int) -> None:
    if image_size % 4 != 0 or image_size < 8:
        raise ValueError(f"{name}: image_size must be a multiple of 4 and at least 8, got {image_size}")


class ConvEncoder(nn.Module):
    """Two stride-2 3x3 convolutions (28 → 14 → 7) and a linear map to ``latent_dim`` features.

    The same layout serves the autoencoder, the VAE (with ``2 * latent_dim`` outputs for the mean
    and log-variance) and a classifier head built on a pre-trained encoder.

    Shape: ``(N, in_channels, S, S)`` → ``(N, out_features)`` with ``S = image_size``.
    """

    def __init__(self, in_channels: int = 1, out_features: int = 32, base_channels: int = 16,
                 image_size: int = 28) -> None:
        super().__init__()
        _check_side("ConvEncoder", image_size)
        c = base_channels
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.fc = nn.Linear(2 * c * side * side, out_features)
        self.out_features = out_features

    def forward(self, x):
        return self.fc(self.features(x))


class ConvDecoder(nn.Module):
    """The encoder's mirror: a linear map to ``2c x S/4 x S/4`` and two stride-2 4x4 transposed
    convolutions (7 → 14 → 28). Returns logits; ``sigmoid`` of them are pixel intensities in [0, 1].

    Shape: ``(N, in_features)`` → ``(N, out_channels, S, S)``.
    """

    def __init__(self, in_features: int = 32, out_channels: int = 1, base_channels: int = 16,
                 image_size: int = 28) -> None:
        super().__init__()
        _check_side("ConvDecoder", image_size)
        c = base_channels
        side = image_size // 4
        self.fc = nn.Sequential(nn.Linear(in_features, 2 * c * side * side), nn.ReLU())
        self.unflatten = nn.Unflatten(1, (2 * c, side, side))
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, z):
        return self.deconv(self.unflatten(self.fc(z)))


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder: ``ConvEncoder`` to a ``latent_dim`` code, ``ConvDecoder`` back.

    Trained to reconstruct its input (``binary_cross_entropy_with_logits(model.decode_logits(z), x)``
    or MSE on ``model(x)``), the bottleneck forces a compact code; the encoder alone then serves as
    a pre-trained feature extractor for a classifier fine-tuned on few labels (Hinton & Salakhutdinov,
    "Reducing the dimensionality of data with neural networks", Science 2006, pre-train then
    fine-tune; here convolutional and trained by backprop end to end).

    Args:
        in_channels: image channels.
        latent_dim: size of the code.
        base_channels: channels of the first convolution (the second has twice as many).
        image_size: input side, a multiple of 4 (28 for MNIST / Fashion-MNIST).

    Shape: ``forward``: ``(N, C, S, S)`` → reconstruction ``(N, C, S, S)`` in [0, 1];
    ``encode``: → ``(N, latent_dim)``; ``decode_logits``: ``(N, latent_dim)`` → ``(N, C, S, S)``.
    """

    def __init__(self, in_channels: int = 1, latent_dim: int = 32, base_channels: int = 16,
                 image_size: int = 28) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"ConvAutoencoder: latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = latent_dim
        self.encoder = ConvEncoder(in_channels, latent_dim, base_channels, image_size)
        self.decoder = ConvDecoder(latent_dim, in_channels, base_channels, image_size)

    def encode(self, x):
        return self.encoder(x)

    def decode_logits(self, z):
        return self.decoder(z)

    def decode(self, z):
        return deepbox.sigmoid(self.decoder(z))

    def forward(self, x):
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}"


@register_model("conv_autoencoder", task="generative",
                summary="convolutional autoencoder for 28x28 images (encoder reusable for transfer)")
def conv_autoencoder(in_channels: int = 1, latent_dim: int = 32, base_channels: int = 16,
                     image_size: int = 28) -> ConvAutoencoder:
    """Convolutional autoencoder for 28x28 images."""
    return ConvAutoencoder(in_channels, latent_dim, base_channels, image_size)

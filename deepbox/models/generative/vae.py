"""A variational autoencoder (convolutional or MLP) for 28x28 images."""
from __future__ import annotations

import deepbox
from deepbox import nn
from deepbox.models.generative.autoencoder import ConvDecoder, ConvEncoder
from deepbox.models.registry import register_model
from deepbox.nn import functional as F

__all__ = ["VAE", "vae", "kl_divergence"]


def kl_divergence(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, summed over the latent dimensions.

    Closed form for Gaussians (Kingma & Welling 2014, Appendix B):
    ``-1/2 * sum(1 + logvar - mu^2 - exp(logvar))``.

    Shape: ``mu``, ``logvar``: ``(N, D)`` → ``(N,)``.
    """
    if tuple(mu.shape) != tuple(logvar.shape):
        raise ValueError(f"kl_divergence: mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have one shape")
    return -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(dim=-1)


class _MLPEncoder(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, out_features))

    def forward(self, x):
        return self.net(x)


class _MLPDecoder(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_channels: int, image_size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, out_channels * image_size * image_size),
                                 nn.Unflatten(1, (out_channels, image_size, image_size)))

    def forward(self, z):
        return self.net(z)


class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

    The encoder outputs the mean ``mu`` and log-variance ``logvar`` of a diagonal Gaussian
    q(z|x); a code is drawn with the reparameterisation ``z = mu + exp(logvar / 2) * eps``,
    ``eps ~ N(0, I)``, so that the sample is a differentiable function of the encoder's outputs;
    the decoder gives Bernoulli logits for every pixel. Training minimises the negative ELBO,
    ``loss_function``: the reconstruction cross-entropy plus ``beta`` times the KL divergence from
    the prior N(0, I). New images come from decoding draws of the prior (``sample``).

    Args:
        in_channels: image channels.
        latent_dim: size of z.
        arch: ``'conv'`` (``ConvEncoder``/``ConvDecoder``) or ``'mlp'`` (one hidden layer, as in the paper).
        base_channels: channels of the first convolution (``arch='conv'``).
        hidden: hidden units (``arch='mlp'``; the paper uses 400 for MNIST).
        image_size: input side (a multiple of 4 for ``arch='conv'``).

    Shape: ``forward``: ``(N, C, S, S)`` → ``(recon_logits (N, C, S, S), mu (N, D), logvar (N, D))``;
    ``sample(n)`` → ``(n, C, S, S)`` in [0, 1].
    """

    def __init__(self, in_channels: int = 1, latent_dim: int = 16, arch: str = "conv", base_channels: int = 16,
                 hidden: int = 400, image_size: int = 28) -> None:
        super().__init__()
        if arch not in ("conv", "mlp"):
            raise ValueError(f"VAE: arch must be 'conv' or 'mlp', got {arch!r}")
        if latent_dim < 1:
            raise ValueError(f"VAE: latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim, self.arch = latent_dim, arch
        self.image_shape = (in_channels, image_size, image_size)
        if arch == "conv":
            self.encoder = ConvEncoder(in_channels, 2 * latent_dim, base_channels, image_size)
            self.decoder = ConvDecoder(latent_dim, in_channels, base_channels, image_size)
        else:
            self.encoder = _MLPEncoder(in_channels * image_size * image_size, hidden, 2 * latent_dim)
            self.decoder = _MLPDecoder(latent_dim, hidden, in_channels, image_size)

    def encode(self, x):
        """The parameters of q(z|x): ``(mu, logvar)``, each ``(N, latent_dim)``."""
        h = self.encoder(x)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def reparameterize(self, mu, logvar, generator=None):
        """``mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``: a sample whose gradient reaches mu and logvar."""
        eps = deepbox.randn(*mu.shape, generator=generator, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def decode_logits(self, z):
        return self.decoder(z)

    def decode(self, z):
        """Pixel means in [0, 1] for codes ``z``."""
        return deepbox.sigmoid(self.decoder(z))

    def forward(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"VAE: expected input (N, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode_logits(z), mu, logvar

    @staticmethod
    def loss_function(recon_logits, x, mu, logvar, beta: float = 1.0):
        """Negative ELBO per image, averaged over the batch.

        ``sum_pixels BCE(recon_logits, x) + beta * KL(q(z|x) || N(0, I))``. ``x`` holds pixel
        intensities in [0, 1] (the Bernoulli likelihood of the paper's MNIST experiments).
        """
        n = x.shape[0]
        recon = F.binary_cross_entropy_with_logits(recon_logits, x, reduction="sum") / n
        return recon + beta * kl_divergence(mu, logvar).mean()

    def sample(self, n: int, generator=None):
        """Decode ``n`` draws from the prior N(0, I): images ``(n, C, S, S)`` in [0, 1] (no graph)."""
        if n < 1:
            raise ValueError(f"VAE.sample: n must be >= 1, got {n}")
        with deepbox.no_grad():
            z = deepbox.randn(n, self.latent_dim, generator=generator)
            return self.decode(z)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, arch={self.arch!r}"


@register_model("vae", task="generative",
                summary="variational autoencoder, conv or MLP (Kingma & Welling 2014)")
def vae(in_channels: int = 1, latent_dim: int = 16, arch: str = "conv", base_channels: int = 16, hidden: int = 400,
        image_size: int = 28) -> VAE:
    """Variational autoencoder, conv or MLP (Kingma & Welling 2014)."""
    return VAE(in_channels, latent_dim, arch, base_channels, hidden, image_size)

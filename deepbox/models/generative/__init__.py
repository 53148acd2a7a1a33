"""Generative models of the zoo: autoencoder, VAE and DCGAN, registered with ``task='generative'``."""
from deepbox.models.generative.autoencoder import ConvAutoencoder, ConvDecoder, ConvEncoder, conv_autoencoder
from deepbox.models.generative.gan import (
           DCGANDiscriminator,
           DCGANGenerator,
           dcgan_discriminator,
           dcgan_generator,
           dcgan_init_,
)
from deepbox.models.generative.vae import VAE, kl_divergence, vae

__all__ = ["ConvAutoencoder", "ConvEncoder", "ConvDecoder", "conv_autoencoder", "VAE", "vae", "kl_divergence",
           "DCGANGenerator", "DCGANDiscriminator", "dcgan_generator", "dcgan_discriminator", "dcgan_init_"]

"""Generative models: shapes, parameter counts and outputs equal to the same network written with torch.nn
(given the same weights), the VAE's KL term and loss against torch, and each model fits a small batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import deepbox
from deepbox import models
from deepbox.nn import functional as F
from tests.helpers import assert_close, copy_torch_weights

# ----------------------------------------------------------------------------- torch twins


class TEncoder(tnn.Module):
    def __init__(self, c_in, out, c):
        super().__init__()
        self.features = tnn.Sequential(tnn.Conv2d(c_in, c, 3, 2, 1), tnn.ReLU(), tnn.Conv2d(c, 2 * c, 3, 2, 1),
                                       tnn.ReLU(), tnn.Flatten())
        self.fc = tnn.Linear(2 * c * 49, out)

    def forward(self, x):
        return self.fc(self.features(x))


class TDecoder(tnn.Module):
    def __init__(self, inp, c_out, c):
        super().__init__()
        self.fc = tnn.Sequential(tnn.Linear(inp, 2 * c * 49), tnn.ReLU())
        self.unflatten = tnn.Unflatten(1, (2 * c, 7, 7))
        self.deconv = tnn.Sequential(tnn.ConvTranspose2d(2 * c, c, 4, 2, 1), tnn.ReLU(),
                                     tnn.ConvTranspose2d(c, c_out, 4, 2, 1))

    def forward(self, z):
        return self.deconv(self.unflatten(self.fc(z)))


class TAutoencoder(tnn.Module):
    def __init__(self, c_in=1, latent=32, c=16):
        super().__init__()
        self.encoder, self.decoder = TEncoder(c_in, latent, c), TDecoder(latent, c_in, c)

    def forward(self, x):
        return torch.sigmoid(self.decoder(self.encoder(x)))


class TVAE(tnn.Module):
    """The conv VAE as one would write it in PyTorch, with the noise passed in."""

    def __init__(self, c_in=1, latent=16, c=16):
        super().__init__()
        self.latent = latent
        self.encoder, self.decoder = TEncoder(c_in, 2 * latent, c), TDecoder(latent, c_in, c)

    def forward(self, x, eps):
        h = self.encoder(x)
        mu, logvar = h[:, :self.latent], h[:, self.latent:]
        return self.decoder(mu + torch.exp(0.5 * logvar) * eps), mu, logvar


def t_generator(nz=64, c=32, c_out=1):
    return tnn.Sequential(
        tnn.ConvTranspose2d(nz, 4 * c, 7, 1, 0, bias=False), tnn.BatchNorm2d(4 * c), tnn.ReLU(),
        tnn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), tnn.BatchNorm2d(2 * c), tnn.ReLU(),
        tnn.ConvTranspose2d(2 * c, c_out, 4, 2, 1), tnn.Tanh())


def t_discriminator(c_in=1, c=32):
    return tnn.Sequential(
        tnn.Conv2d(c_in, c, 4, 2, 1), tnn.LeakyReLU(0.2),
        tnn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), tnn.BatchNorm2d(2 * c), tnn.LeakyReLU(0.2),
        tnn.Conv2d(2 * c, 1, 7, 1, 0), tnn.Flatten(0))


def _nparams(m):
    return sum(p.numel() for p in m.parameters())


def _images(n=4, c=1, seed=0):
    return np.random.default_rng(seed).random((n, c, 28, 28)).astype(np.float32)


# ----------------------------------------------------------------------------- registry and shapes


def test_registered_as_generative():
    assert set(models.list_models(task="generative")) >= {"conv_autoencoder", "vae", "dcgan_generator",
                                                          "dcgan_discriminator"}
    assert "Kingma" in models.model_info("vae")["summary"]
    assert "Radford" in models.VAE.__doc__ or "Radford" in models.DCGANGenerator.__doc__
    assert "Kingma & Welling" in models.VAE.__doc__


@pytest.mark.parametrize("c_in", [1, 3])
def test_autoencoder_matches_torch(c_in):
    ours, ref = models.get_model("conv_autoencoder", in_channels=c_in, latent_dim=12, base_channels=8), \
        TAutoencoder(c_in, 12, 8)
    assert _nparams(ours) == _nparams(ref)
    copy_torch_weights(ref, ours)
    x = _images(3, c_in)
    out = ours(deepbox.from_numpy(x))
    assert tuple(out.shape) == (3, c_in, 28, 28) and tuple(ours.encode(deepbox.from_numpy(x)).shape) == (3, 12)
    assert_close(out.detach(), ref(torch.from_numpy(x)).detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_vae_shapes_and_sample(arch):
    m = models.VAE(latent_dim=5, arch=arch, hidden=32)
    recon, mu, logvar = m(deepbox.from_numpy(_images(2)))
    assert tuple(recon.shape) == (2, 1, 28, 28) and tuple(mu.shape) == tuple(logvar.shape) == (2, 5)
    s = m.sample(6)
    assert tuple(s.shape) == (6, 1, 28, 28) and not s.requires_grad
    assert 0.0 <= float(s.min()) and float(s.max()) <= 1.0
    if arch == "mlp":  # 784-32-10 and 5-32-784
        assert _nparams(m) == (784 * 32 + 32 + 32 * 10 + 10) + (5 * 32 + 32 + 32 * 784 + 784)


def test_vae_forward_and_loss_match_torch():
    """Same weights and the same noise: the reconstruction, mu, logvar, the loss and every gradient agree."""
    ours, ref = models.VAE(latent_dim=6, base_channels=8), TVAE(1, 6, 8)
    assert _nparams(ours) == _nparams(ref)
    copy_torch_weights(ref, ours)
    x = _images(3)
    eps = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    ours.reparameterize = lambda mu, logvar, generator=None: mu + (0.5 * logvar).exp() * deepbox.from_numpy(eps)
    r, mu, lv = ours(deepbox.from_numpy(x))
    loss = ours.loss_function(r, deepbox.from_numpy(x), mu, lv, beta=0.5)
    loss.backward()
    tx = torch.from_numpy(x)
    tr, tmu, tlv = ref(tx, torch.from_numpy(eps))
    kl = -0.5 * torch.sum(1 + tlv - tmu.pow(2) - tlv.exp())  # the PyTorch VAE example's KLD
    tloss = (TF.binary_cross_entropy_with_logits(tr, tx, reduction="sum") + 0.5 * kl) / 3
    tloss.backward()
    assert_close(r.detach(), tr.detach(), rtol=1e-4, atol=1e-5)
    assert_close(loss.detach(), tloss.detach(), rtol=1e-5, atol=1e-4)
    tgrads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tgrads[name].grad, rtol=2e-3, atol=2e-5, what=name)


def test_kl_divergence_against_torch_distributions():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    ours = models.kl_divergence(deepbox.tensor(mu), deepbox.tensor(logvar))
    q = torch.distributions.Normal(torch.tensor(mu), torch.exp(0.5 * torch.tensor(logvar)))
    p = torch.distributions.Normal(torch.zeros(5, 7, dtype=torch.float64), torch.ones(5, 7, dtype=torch.float64))
    assert_close(ours, torch.distributions.kl_divergence(q, p).sum(-1), rtol=1e-10, atol=1e-12)
    # zero exactly at the prior, and its gradient checks out by finite differences
    assert float(models.kl_divergence(deepbox.zeros(2, 3), deepbox.zeros(2, 3)).abs().max()) == 0.0
    a = deepbox.tensor(mu, requires_grad=True)
    b = deepbox.tensor(logvar, requires_grad=True)
    assert deepbox.autograd.gradcheck(lambda m, l: models.kl_divergence(m, l), (a, b))


def test_reparameterisation_statistics_and_gradient():
    m = models.VAE(latent_dim=3)
    mu = deepbox.full((20000, 3), 2.0, requires_grad=True)
    logvar = deepbox.full((20000, 3), float(np.log(0.25)), requires_grad=True)
    z = m.reparameterize(mu, logvar)
    zn = z.detach().numpy()
    assert abs(zn.mean() - 2.0) < 0.02 and abs(zn.std() - 0.5) < 0.02
    z.sum().backward()
    assert np.allclose(mu.grad.numpy(), 1.0)  # dz/dmu = 1; dz/dlogvar = eps * sigma / 2
    eps = (zn - 2.0) / 0.5
    assert np.allclose(logvar.grad.numpy(), eps * 0.25, atol=1e-5)


@pytest.mark.parametrize("nz,c,c_out", [(64, 32, 1), (10, 4, 3)])
def test_dcgan_matches_torch(nz, c, c_out):
    g, tg = models.DCGANGenerator(nz, c, c_out), t_generator(nz, c, c_out)
    d, td = models.DCGANDiscriminator(c_out, c), t_discriminator(c_out, c)
    assert _nparams(g) == _nparams(tg) and _nparams(d) == _nparams(td)
    copy_torch_weights(tg, g.net)
    copy_torch_weights(td, d.net)
    z = np.random.default_rng(0).standard_normal((3, nz)).astype(np.float32)
    img = g(deepbox.from_numpy(z))
    timg = tg(torch.from_numpy(z).view(3, nz, 1, 1))
    assert tuple(img.shape) == (3, c_out, 28, 28)
    assert_close(img.detach(), timg.detach(), rtol=1e-4, atol=1e-5)
    assert_close(d(img).detach(), td(timg).detach(), rtol=1e-4, atol=1e-4)
    assert tuple(d(img).shape) == (3,)


def test_dcgan_init_statistics():
    g = models.DCGANGenerator(64, 32)
    w = g.net[0].weight.detach().numpy()
    assert abs(w.std() - 0.02) < 0.002 and abs(w.mean()) < 0.002
    bn = g.net[1].weight.detach().numpy()
    assert abs(bn.mean() - 1.0) < 0.01


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="arch"):
        models.VAE(arch="rnn")
    with pytest.raises(ValueError, match="image_size"):
        models.ConvAutoencoder(image_size=30)
    with pytest.raises(ValueError, match="latent_dim"):
        models.DCGANGenerator(8)(deepbox.randn(2, 9))
    with pytest.raises(ValueError, match="28, 28"):
        models.DCGANDiscriminator()(deepbox.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="expected input"):
        models.VAE()(deepbox.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="one shape"):
        models.kl_divergence(deepbox.zeros(2, 3), deepbox.zeros(2, 4))


# ----------------------------------------------------------------------------- each model fits a small batch


def _batch(n=8):
    """n smooth blobs at different places: an easy set to memorise."""
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 1, 28, 28), np.float32)
    for i in range(n):
        cy, cx = 7 + (i * 5) % 14, 7 + (i * 3) % 14
        out[i, 0] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
    return deepbox.from_numpy(out)


def test_autoencoder_overfits_small_batch():
    """Reconstruction error falls far below that of the best code-free guess, the batch's mean image."""
    x = _batch()
    mean_image_mse = float(((x - x.mean(0, keepdim=True)) ** 2).mean())
    m = models.ConvAutoencoder(latent_dim=8, base_channels=8)
    opt = deepbox.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(200):
        loss = F.binary_cross_entropy_with_logits(m.decode_logits(m.encode(x)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    mse = float(F.mse_loss(m(x), x))
    assert mse < 0.25 * mean_image_mse, (mean_image_mse, mse)


def test_vae_overfits_small_batch():
    x = _batch()
    m = models.VAE(latent_dim=4, base_channels=8)
    opt = deepbox.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        r, mu, lv = m(x)
        loss = m.loss_function(r, x, mu, lv)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    # per-image BCE of a blank guess is 784 * ln 2 ≈ 543; the blobs' own entropy is ≈ 90
    assert np.mean(losses[-10:]) < 0.35 * losses[0], (losses[0], np.mean(losses[-10:]))


def test_gan_discriminator_and_generator_each_learn():
    """One batch: D learns to separate it from G's samples; then G, against a frozen D, learns to fool it."""
    x = _batch() * 2 - 1
    g, d = models.DCGANGenerator(16, 8), models.DCGANDiscriminator(1, 8)
    z = deepbox.randn(8, 16)
    opt_d = deepbox.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    ones, zeros = deepbox.ones(8), deepbox.zeros(8)
    for _ in range(30):
        with deepbox.no_grad():
            fake = g(z)
        loss_d = F.binary_cross_entropy_with_logits(d(x), ones) + F.binary_cross_entropy_with_logits(d(fake), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    assert float(loss_d) < 0.1, float(loss_d)
    d.eval()
    d.requires_grad_(False)
    opt_g = deepbox.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    first = float(F.binary_cross_entropy_with_logits(d(g(z)), ones))
    for _ in range(40):
        loss_g = F.binary_cross_entropy_with_logits(d(g(z)), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    assert float(loss_g) < 0.1 * first, (first, float(loss_g))

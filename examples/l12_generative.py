"""Lecture 12 — generative models: an autoencoder, a VAE and a GAN, and pre-training for few labels.

What it demonstrates, on MNIST-10k (first 8,000 digits for training, last 2,000 held out):
  1. A convolutional autoencoder (``deepbox.models.ConvAutoencoder``) learns a 32-number code;
     held-out digits and their reconstructions are saved side by side (autoencoder.png).
  2. A variational autoencoder (``deepbox.models.VAE``; Kingma & Welling, ICLR 2014) trained on the
     negative ELBO (Bernoulli reconstruction + KL to N(0, I)); new digits decoded from prior draws
     (vae_samples.png) and reconstructions (vae_reconstructions.png).
  3. A DCGAN (``deepbox.models.DCGANGenerator`` / ``DCGANDiscriminator``; Radford, Metz & Chintala,
     ICLR 2016) trained with the non-saturating loss and Adam(2e-4, beta1 0.5); samples from a
     fixed noise batch (gan_samples.png).
  4. Few-label transfer: the autoencoder's encoder, pre-trained on the 8,000 training images without
     their labels, topped with a linear layer and fine-tuned on 100 labelled digits per class,
     against the same classifier trained from scratch on the same 1,000 labels; test accuracy of both.

    python examples/l12_generative.py [--quick] [--out DIR] [--parts ae,vae,gan,transfer]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import deepbox  # noqa: E402
import deepbox.nn.functional as F  # noqa: E402
from deepbox import nn  # noqa: E402
from deepbox.models import VAE, ConvAutoencoder, ConvEncoder, DCGANDiscriminator, DCGANGenerator  # noqa: E402
from examples._course import Timer, evaluate, finish, load_mnist10k, parser, plt, save_fig, save_grid, setup  # noqa: E402

NAME = "l12_generative"


def batches(n, bs, rng):
    return np.array_split(rng.permutation(n), max(n // bs, 1))


def train_autoencoder(x, epochs, latent, base, rng):
    model = ConvAutoencoder(latent_dim=latent, base_channels=base)
    opt = deepbox.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for epoch in range(epochs):
        for idx in batches(len(x), 64, rng):
            xb = deepbox.from_numpy(x[idx])
            loss = F.binary_cross_entropy_with_logits(model.decode_logits(model.encode(xb)), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        print(f"  autoencoder epoch {epoch + 1}: reconstruction BCE per pixel {np.mean(losses[-len(x) // 64:]):.4f}")
    return model, losses


def train_vae(x, epochs, latent, base, rng):
    model = VAE(latent_dim=latent, base_channels=base)
    opt = deepbox.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for epoch in range(epochs):
        for idx in batches(len(x), 64, rng):
            xb = deepbox.from_numpy(x[idx])
            recon, mu, logvar = model(xb)
            loss = model.loss_function(recon, xb, mu, logvar)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        print(f"  VAE epoch {epoch + 1}: negative ELBO {np.mean(losses[-len(x) // 64:]):.2f} nats per image")
    return model, losses


def train_gan(x, steps, latent, base, rng, batch=64):
    g, d = DCGANGenerator(latent, base), DCGANDiscriminator(1, base)
    opt_g = deepbox.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = deepbox.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_x = x * 2 - 1  # the generator's tanh range
    ones, zeros = deepbox.ones(batch), deepbox.zeros(batch)
    hist = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
    for step in range(steps):
        idx = rng.integers(0, len(x), batch)
        fake = g(deepbox.randn(batch, latent))
        # discriminator: real → 1, generated → 0 (the generator's graph is cut by detach)
        d_real, d_fake = d(deepbox.from_numpy(real_x[idx])), d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(d_real, ones) + F.binary_cross_entropy_with_logits(d_fake, zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # generator: the non-saturating loss -log D(G(z)) (Goodfellow et al. 2014)
        loss_g = F.binary_cross_entropy_with_logits(d(fake), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for k, v in zip(hist, (loss_d, loss_g, d_real.sigmoid().mean(), d_fake.sigmoid().mean())):
            hist[k].append(float(v))
        if (step + 1) % max(steps // 5, 1) == 0:
            print(f"  GAN step {step + 1}: D loss {np.mean(hist['d_loss'][-50:]):.3f}, "
                  f"G loss {np.mean(hist['g_loss'][-50:]):.3f}, D(real) {np.mean(hist['d_real'][-50:]):.2f}, "
                  f"D(fake) {np.mean(hist['d_fake'][-50:]):.2f}")
    return g, hist


class EncoderClassifier(nn.Module):
    """The autoencoder's encoder, then ReLU and a linear layer to the class logits."""

    def __init__(self, latent: int, base: int, num_classes: int = 10) -> None:
        super().__init__()
        self.encoder = ConvEncoder(1, latent, base)
        self.head = nn.Linear(latent, num_classes)

    def forward(self, x):
        return self.head(F.relu(self.encoder(x)))


def fit_classifier(model, x, y, epochs, rng, lr=1e-3):
    opt = deepbox.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for idx in batches(len(x), 50, rng):
            loss = F.cross_entropy(model(deepbox.from_numpy(x[idx])), deepbox.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def few_labels(y, per_class, rng):
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])


def main(argv=None) -> dict:
    ap = parser(NAME, __doc__)
    ap.add_argument("--parts", default="ae,vae,gan,transfer")
    ap.add_argument("--epochs", type=int, default=5, help="epochs for the autoencoder and the VAE")
    ap.add_argument("--gan-steps", type=int, default=800)
    ap.add_argument("--finetune-epochs", type=int, default=30)
    ap.add_argument("--per-class", type=int, default=100)
    args = ap.parse_args(argv)
    out = setup(args, NAME)
    parts = set(args.parts.split(","))
    x, y, xte, yte = load_mnist10k(8000, 2000)
    latent, base, gan_base = 32, 16, 32
    if args.quick:
        x, xte, yte = x[:512], xte[:300], yte[:300]
        args.epochs, args.gan_steps, args.finetune_epochs, args.per_class = 2, 10, 3, 10
        base, gan_base = 8, 8
    rng = np.random.default_rng(args.seed)
    res = {}

    if "ae" in parts or "transfer" in parts:
        with Timer() as t:
            ae, ae_losses = train_autoencoder(x, args.epochs, latent, base, rng)
        ae.eval()
        with deepbox.no_grad():
            rec = ae(deepbox.from_numpy(xte[:32])).numpy()
            test_mse = float(np.mean([F.mse_loss(ae(deepbox.from_numpy(xte[i:i + 500])), deepbox.from_numpy(
                xte[i:i + 500])).item() for i in range(0, len(xte), 500)]))
        save_grid(np.concatenate([xte[:16], rec[:16], xte[16:32], rec[16:32]]), out / "autoencoder.png", nrow=16)
        res["autoencoder"] = {"first_bce": ae_losses[0], "final_bce": float(np.mean(ae_losses[-20:])),
                              "test_mse": test_mse, "seconds": t.seconds}
        print(f"autoencoder: held-out reconstruction MSE {test_mse:.4f} per pixel "
              f"(BCE {ae_losses[0]:.3f} → {res['autoencoder']['final_bce']:.3f}), {t.seconds:.0f} s")

    if "vae" in parts:
        deepbox.manual_seed(args.seed)
        with Timer() as t:
            vae, vae_losses = train_vae(x, args.epochs, 16, base, rng)
        vae.eval()
        save_grid(vae.sample(64).numpy(), out / "vae_samples.png", nrow=8)
        with deepbox.no_grad():
            mu, logvar = vae.encode(deepbox.from_numpy(xte[:16]))
            rec = vae.decode(mu).numpy()
            xt = deepbox.from_numpy(xte)
            r, mu, logvar = vae(xt)
            test_elbo = float(vae.loss_function(r, xt, mu, logvar))
        save_grid(np.concatenate([xte[:16], rec]), out / "vae_reconstructions.png", nrow=16)
        res["vae"] = {"first_loss": vae_losses[0], "final_loss": float(np.mean(vae_losses[-20:])),
                      "test_neg_elbo": test_elbo, "seconds": t.seconds}
        print(f"VAE: held-out negative ELBO {test_elbo:.1f} nats per image "
              f"(training {vae_losses[0]:.1f} → {res['vae']['final_loss']:.1f}), {t.seconds:.0f} s")

    if "gan" in parts:
        deepbox.manual_seed(args.seed)
        with Timer() as t:
            g, hist = train_gan(x, args.gan_steps, 64, gan_base, rng)
        g.eval()
        z = deepbox.randn(64, 64, generator=deepbox.Generator().manual_seed(1))
        with deepbox.no_grad():
            samples = (g(z).numpy() + 1) / 2
        save_grid(samples, out / "gan_samples.png", nrow=8)
        pyplot = plt()
        fig, ax = pyplot.subplots(figsize=(7, 4))
        for k in ("d_loss", "g_loss"):
            ax.plot(np.convolve(hist[k], np.ones(20) / 20, mode="valid") if len(hist[k]) > 20 else hist[k], label=k)
        ax.set(xlabel="step", ylabel="loss (moving average of 20)", title="DCGAN on MNIST-10k")
        ax.legend()
        save_fig(fig, out / "gan_losses.png")
        k = max(args.gan_steps // 10, 1)
        res["gan"] = {"steps": args.gan_steps, "d_real": float(np.mean(hist["d_real"][-k:])),
                      "d_fake": float(np.mean(hist["d_fake"][-k:])), "sample_min": float(samples.min()),
                      "sample_max": float(samples.max()), "sample_std_over_batch": float(samples.std(0).mean()),
                      "seconds": t.seconds}
        print(f"GAN: {args.gan_steps} steps in {t.seconds:.0f} s; D(real) {res['gan']['d_real']:.2f}, "
              f"D(fake) {res['gan']['d_fake']:.2f} over the last {k} steps")

    if "transfer" in parts:
        lab = few_labels(y[:len(x)], args.per_class, rng)
        accs = {}
        for how in ("from scratch", "pre-trained encoder"):
            deepbox.manual_seed(args.seed)
            clf = EncoderClassifier(latent, base)
            if how == "pre-trained encoder":
                clf.encoder.load_state_dict(ae.encoder.state_dict())
            fit_classifier(clf, x[lab], y[lab], args.finetune_epochs, np.random.default_rng(args.seed))
            accs[how] = evaluate(clf, xte, yte)[1]
        res["transfer"] = {"labels": int(len(lab)), "scratch_acc": accs["from scratch"],
                           "pretrained_acc": accs["pre-trained encoder"]}
        print(f"few labels ({args.per_class} per class, {len(lab)} in all): test accuracy from scratch "
              f"{accs['from scratch']:.4f}, with the encoder pre-trained on {len(x)} unlabelled images "
              f"{accs['pre-trained encoder']:.4f}")
    return finish(out, res)


if __name__ == "__main__":
    main()

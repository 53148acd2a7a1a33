"""PyTorch's VAE example in brief, written for PyTorch: its idioms end to end.

A fully connected VAE trained for a few steps on a small image set: ``torch.randn_like`` in the
reparameterisation, ``F.binary_cross_entropy(..., reduction='sum')``, ``torch.cat`` of inputs and
reconstructions into ``save_image(..., nrow=n)``, decoding prior samples into a ``save_image``
grid, then ``torch.save(model.state_dict(), ...)``, reloading it, and ``torch.onnx.export`` of the
decoder. The test runs it with ``import torch``/``torchvision`` rewritten to deepbox.
"""
import argparse
import os

import torch
import torch.nn.functional as F
import torch.onnx
import torch.utils.data
from torch import nn, optim
from torchvision.utils import save_image

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=".")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()
torch.manual_seed(1)
os.makedirs(os.path.join(args.out, "results"), exist_ok=True)

# blobs on a 28x28 canvas stand in for MNIST digits
grid = torch.linspace(-1, 1, 28)
yy, xx = torch.meshgrid(grid, grid, indexing="ij")
centres = torch.rand(256, 2) * 1.2 - 0.6
images = torch.exp(-((xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2) / 0.05)
dataset = torch.utils.data.TensorDataset(images.unsqueeze(1), torch.zeros(256, dtype=torch.long))
train_loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
test_loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=False)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 100)
        self.fc21 = nn.Linear(100, 20)
        self.fc22 = nn.Linear(100, 20)
        self.fc3 = nn.Linear(20, 100)
        self.fc4 = nn.Linear(100, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


class Decoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z).view(-1, 1, 28, 28)


model = VAE()
optimizer = optim.Adam(model.parameters(), lr=1e-3)


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def train(epoch):
    model.train()
    train_loss = 0
    for data, _ in train_loader:
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss / len(train_loader.dataset)


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(args.batch_size, 1, 28, 28)[:n]])
                save_image(comparison.cpu(), os.path.join(args.out, "results", f"reconstruction_{epoch}.png"), nrow=n)
    return test_loss / len(test_loader.dataset)


losses = []
for epoch in range(1, args.epochs + 1):
    losses.append(train(epoch))
    test_loss = test(epoch)
    print(f"====> Epoch: {epoch} Average loss: {losses[-1]:.4f}  Test set loss: {test_loss:.4f}")
    with torch.no_grad():
        sample = torch.randn(64, 20)
        sample = model.decode(sample).cpu()
        save_image(sample.view(64, 1, 28, 28), os.path.join(args.out, "results", f"sample_{epoch}.png"))
assert losses[-1] < losses[0], losses

path = os.path.join(args.out, "vae.pth")
torch.save(model.state_dict(), path)
restored = VAE()
restored.load_state_dict(torch.load(path, weights_only=True))
restored.eval()
z = torch.randn(5, 20)
with torch.no_grad():
    assert torch.equal(restored.decode(z), model.decode(z))
torch.onnx.export(Decoder(restored), (z,), os.path.join(args.out, "decoder.onnx"), input_names=["z"],
                  output_names=["image"], dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}})
print("done")

# A VAE's loss with torch.distributions (the sample replaced by the mean so both frameworks agree exactly),
# plus the reparameterised sample's shape and gradient flow.
import json

import torch
import torch.nn as nn
from torch.distributions import Normal, kl_divergence

enc = nn.Linear(6, 4)
dec = nn.Linear(2, 6)
with torch.no_grad():
    for p in list(enc.parameters()) + list(dec.parameters()):
        p.copy_(torch.linspace(-0.3, 0.3, p.numel()).reshape(p.shape))
x = torch.linspace(0, 1, 36).reshape(6, 6)
opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=0.01)
for _ in range(30):
    mu, log_var = enc(x).chunk(2, dim=1)
    q = Normal(mu, (0.5 * log_var).exp())
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    recon = torch.sigmoid(dec(q.mean))
    loss = nn.functional.binary_cross_entropy(recon, x, reduction="sum") + kl_divergence(q, prior).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
mu, log_var = enc(x).chunk(2, dim=1)
z = Normal(mu, (0.5 * log_var).exp()).rsample((5,))
z.sum().backward()
print(json.dumps({"loss": round(loss.item(), 5), "z_shape": list(z.shape),
                  "entropy": round(q.entropy().sum().item(), 5), "grad": enc.weight.grad is not None}))

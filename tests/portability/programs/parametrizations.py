# Weight norm and spectral norm through torch.nn.utils.parametrizations, with weights set by hand.
import json

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

lin = nn.Linear(4, 3)
with torch.no_grad():
    lin.weight.copy_(torch.linspace(-1, 1, 12).reshape(3, 4))
    lin.bias.zero_()
parametrizations.weight_norm(lin)
x = torch.linspace(0, 1, 8).reshape(2, 4)
lin(x).sum().backward()
g = lin.parametrizations.weight.original0.grad
print(json.dumps({"names": sorted(n for n, _ in lin.named_parameters()), "out": round(lin(x).sum().item(), 6),
                  "g": [round(v, 6) for v in g.flatten().tolist()]}))

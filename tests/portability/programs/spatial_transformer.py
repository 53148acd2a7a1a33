# A spatial transformer's sampling step: affine_grid + grid_sample, trained to undo a shift.
import json

import torch
import torch.nn.functional as F

img = torch.zeros(1, 1, 10, 10)
img[0, 0, 3:7, 2:5] = 1.0
target = F.grid_sample(img, F.affine_grid(torch.tensor([[[1.0, 0, 0.2], [0, 1.0, -0.1]]]), [1, 1, 10, 10],
                                          align_corners=False), align_corners=False)
theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], requires_grad=True)
opt = torch.optim.SGD([theta], lr=0.05)
for _ in range(40):
    out = F.grid_sample(img, F.affine_grid(theta, [1, 1, 10, 10], align_corners=False), align_corners=False,
                        padding_mode="border")
    loss = ((out - target) ** 2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(json.dumps({"theta": [round(v, 5) for v in theta.detach().flatten().tolist()], "loss": round(loss.item(), 6)}))

# Device boilerplate, legacy constructors, 0-d formatting and printing options, as tutorials write them.
import json

import torch
import torch.nn as nn

device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
if torch.cuda.is_available():
    device = "cuda"
torch.set_default_device(device)

model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(device)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape))
x = torch.linspace(-1, 1, 30).reshape(10, 3)
y = (x ** 2).sum(1, keepdim=True)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
scaler = torch.amp.GradScaler("cpu")
for _ in range(20):
    with torch.autocast(device_type="cpu", dtype=torch.float16, enabled=False):
        loss = nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()

ids = torch.LongTensor([2, 0, 1])
f = torch.FloatTensor([[1.5, 2.5]])
torch.set_printoptions(precision=2)
print(json.dumps({"loss": f"{loss:.6f}", "long": isinstance(ids, torch.LongTensor), "ids": ids.tolist(),
                  "float_type": f.type().split(".")[-1], "memory": torch.cuda.memory_allocated(),
                  "repr": repr(torch.tensor([1.23456, 7.0]))}))

# Activation checkpointing in a training step, and the profiler around it.
import json

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.checkpoint import checkpoint

block = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 5))
head = nn.Linear(5, 1)
with torch.no_grad():
    for p in list(block.parameters()) + list(head.parameters()):
        p.copy_(torch.linspace(-0.4, 0.4, p.numel()).reshape(p.shape))
x = torch.linspace(-1, 1, 20).reshape(4, 5)
with profile(activities=[ProfilerActivity.CPU]) as prof:
    with record_function("train_step"):
        y = head(checkpoint(block, x, use_reentrant=False))
        y.sum().backward()
table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
print(json.dumps({"grad_sum": round(sum(p.grad.sum().item() for p in block.parameters()), 6),
                  "has_table": "Self CPU" in table and "train_step" in table}))

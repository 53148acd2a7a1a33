# REINFORCE on a three-armed bandit with a fixed sequence of actions (so both frameworks see the same data).
import json

import torch
from torch.distributions import Categorical

logits = torch.zeros(3, requires_grad=True)
opt = torch.optim.SGD([logits], lr=0.2)
rewards = torch.tensor([0.1, 1.0, 0.3])
actions = [0, 1, 2, 1, 1, 0, 2, 1] * 5
for a in actions:
    dist = Categorical(logits=logits)
    action = torch.tensor(a)
    loss = -dist.log_prob(action) * rewards[action]
    opt.zero_grad()
    loss.backward()
    opt.step()
print(json.dumps({"probs": [round(v, 6) for v in Categorical(logits=logits).probs.tolist()],
                  "entropy": round(Categorical(logits=logits).entropy().item(), 6)}))

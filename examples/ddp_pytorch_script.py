"""A PyTorch DistributedDataParallel training script that deepbox runs with only its imports changed.

Everything below the imports is plain PyTorch: ``init_process_group``, a ``DistributedSampler``
with ``set_epoch``, a model wrapped in ``DistributedDataParallel``, and collectives to average the
loss and to check that the replicas stayed identical. Run it on 2 processes with

    deepbox launch --nproc 2 examples/ddp_pytorch_script.py --epochs 3      # deepbox, over MPI
    torchrun --nproc-per-node 2 examples/ddp_pytorch_script.py --epochs 3   # PyTorch, after swapping the imports

(alone, ``python examples/ddp_pytorch_script.py`` is a world of one process). The script trains a
small MLP with batch norm on three Gaussian blobs and prints the loss per epoch and the accuracy.
"""
from __future__ import annotations  # noqa: I001  (the deepbox imports stay together, in PyTorch's order)

import argparse
import os

# --- the only lines that differ from the PyTorch script (there: torch, torch.distributed, torch.nn, ...) ---
import deepbox as torch
import deepbox.distributed as dist
import deepbox.nn as nn
import deepbox.nn.functional as F
from deepbox.nn.parallel import DistributedDataParallel as DDP
from deepbox.utils.data import DataLoader, TensorDataset
from deepbox.utils.data.distributed import DistributedSampler

# --------------------------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, split over the ranks")
    parser.add_argument("--quick", action="store_true", help="one short epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1

    dist.init_process_group(backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    g = torch.Generator().manual_seed(1)           # the same data on every rank; the sampler splits it
    centers = torch.randn(3, 8, generator=g) * 2
    y = torch.randint(0, 3, (1024,), generator=g)
    x = centers[y] + torch.randn(1024, 8, generator=g)
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=args.batch_size // world, sampler=sampler)

    torch.manual_seed(100 + rank)                  # different on purpose: DDP copies rank 0's weights
    model = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        total = torch.zeros(2, dtype=torch.float64)
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(ddp(xb), yb)
            loss.backward()
            opt.step()
            total += torch.tensor([loss.item() * len(yb), len(yb)], dtype=torch.float64)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {(total[0] / total[1]).item():.4f}", flush=True)

    ddp.eval()
    with torch.no_grad():
        correct = (ddp(x).argmax(dim=1) == y).sum().to(torch.float64).reshape(1)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    first = flat.clone()
    dist.broadcast(first, src=0)
    in_sync = bool(torch.equal(flat, first))
    flags = [None] * world
    dist.all_gather_object(flags, {"rank": rank, "local_rank": local_rank, "in_sync": in_sync})
    if rank == 0:
        print(f"accuracy {correct.item() / len(y):.4f}; replicas identical on all {world} ranks: "
              f"{all(f['in_sync'] for f in flags)}", flush=True)
    dist.destroy_process_group()
    return {"accuracy": correct.item() / len(y), "in_sync": in_sync}


if __name__ == "__main__":
    main()

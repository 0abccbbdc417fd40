"""Horovod (horovod.torch over gloo, CPU) on the digits data, one process per rank.

    bash scripts/install_horovod.sh     # once: builds horovod 0.28.1 against torch 2.13.0
    spell run --distributed 2 -m public/digits:data \
        "python horovod_train.py --data data/digits.csv --epochs 5"

`--distributed N` sets the variables horovodrun's gloo launcher would (HOROVOD_RANK,
HOROVOD_SIZE, HOROVOD_GLOO_RENDEZVOUS_ADDR, ...), so hvd.init() joins the other ranks.
Each rank trains on its shard with hvd.DistributedOptimizer (gradients allreduced), then
writes its parameters' sha256 and hvd.size() to model/params.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import horovod.torch as hvd
import numpy as np
import torch
from torch import nn


def load_digits(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    if path:
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        return table[:, :-1] / 16.0, table[:, -1].astype(int)
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return digits.data / 16.0, digits.target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="digits.csv: 64 pixel columns, then the target")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--output", default="model")
    args = parser.parse_args()

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    print(f"horovod rank {rank} of size {size} (local rank {hvd.local_rank()})", flush=True)
    total = hvd.allreduce(torch.tensor([float(rank + 1)]), op=hvd.Sum).item()
    print(f"allreduce of rank+1 over all ranks: {total:g}", flush=True)

    torch.manual_seed(rank)  # different on purpose: broadcast_parameters makes them equal
    pixels, target = load_digits(args.data)
    x = torch.tensor(pixels[rank::size], dtype=torch.float32)
    y = torch.tensor(target[rank::size])
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=args.rate),
                                         named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        for start in range(0, len(x), 64):
            optimizer.zero_grad()
            loss = loss_fn(model(x[start:start + 64]), y[start:start + 64])
            loss.backward()
            optimizer.step()  # gradients allreduced (averaged) across ranks
        print(f"epoch {epoch}: loss {loss.item():.4f}", flush=True)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    digest = hashlib.sha256(flat.numpy().tobytes()).hexdigest()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.json").write_text(json.dumps(
        {"rank": rank, "size": size, "allreduce": total, "sha256": digest}))
    print(f"done: parameters sha256 {digest}", flush=True)


if __name__ == "__main__":
    main()

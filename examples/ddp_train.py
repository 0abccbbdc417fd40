"""PyTorch DistributedDataParallel (gloo, CPU) on the digits data, one process per rank.

    spell run --distributed 2 -m public/digits:data \
        "python ddp_train.py --data data/digits.csv --epochs 5"

`--distributed N` starts N copies with MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, ... set, so
`init_process_group("gloo")` finds its peers. Each rank trains on its shard of the data; DDP
averages the gradients, so every rank ends with the same parameters. Each rank writes them
(and their sha256) to model/params.json: rank 0's become the run's outputs, rank K's are
saved under rank-K/. Outside spellray it runs as a single process (world size 1).

`--fail-rank K --fail-code C` makes rank K exit with code C after the first epoch (to see a
failing rank stop the run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def load_digits(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    if path:
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        return table[:, :-1] / 16.0, table[:, -1].astype(int)
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return digits.data / 16.0, digits.target


def parameters_digest(model: nn.Module) -> tuple[str, list[float]]:
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return hashlib.sha256(flat.numpy().tobytes()).hexdigest(), flat[:8].tolist()


def training_arguments() -> argparse.ArgumentParser:
    """The options both examples take."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="digits.csv: 64 pixel columns, then the target")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--output", default="model")
    return parser


def save_parameters(output: str, record: dict) -> None:
    """This rank's parameters (their digest) in OUTPUT/params.json: rank 0's become the
    run's outputs, the others' go under rank-K/."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.json").write_text(json.dumps(record))
    print(f"done: parameters sha256 {record['sha256']}", flush=True)


def main() -> None:
    parser = training_arguments()
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--fail-code", type=int, default=3)
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")  # env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    print(f"rank {rank} of {world} (local rank {os.environ.get('LOCAL_RANK', 0)}, "
          f"node rank {os.environ.get('NODE_RANK', 0)})", flush=True)

    torch.manual_seed(0)
    pixels, target = load_digits(args.data)
    data = TensorDataset(torch.tensor(pixels, dtype=torch.float32), torch.tensor(target))
    sampler = DistributedSampler(data, world, rank, seed=0) if distributed else None
    loader = DataLoader(data, batch_size=64, sampler=sampler, shuffle=sampler is None)
    model: nn.Module = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    if distributed:
        model = DistributedDataParallel(model)  # broadcasts rank 0's initial parameters
    optimizer = torch.optim.SGD(model.parameters(), lr=args.rate)
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(1, args.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        total = 0.0
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()  # DDP averages the gradients across ranks here
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch}: loss {total / len(loader):.4f}", flush=True)
        if rank == args.fail_rank:
            print(f"rank {rank} failing on purpose with code {args.fail_code}", flush=True)
            sys.exit(args.fail_code)

    digest, head = parameters_digest(model)
    save_parameters(args.output, {"rank": rank, "world_size": world, "sha256": digest,
                                  "first": head})
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

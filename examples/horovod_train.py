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

import horovod.torch as hvd
import torch
from ddp_train import (  # beside this script
    load_digits,
    parameters_digest,
    save_parameters,
    training_arguments,
)
from torch import nn


def main() -> None:
    args = training_arguments().parse_args()

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

    digest, _ = parameters_digest(model)
    save_parameters(args.output, {"rank": rank, "size": size, "allreduce": total,
                                  "sha256": digest})


if __name__ == "__main__":
    main()

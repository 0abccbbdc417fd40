"""What a distributed run asks of the cluster, and, while it waits, what is missing.

Pure functions over Ray's resource dicts, so the messages are tested without a cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def bundle_for(num_cpus: float, num_gpus: float, resources: dict[str, float]) -> dict[str, float]:
    """One rank's share: the machine type as a placement group bundle."""
    bundle = {"CPU": float(num_cpus), "GPU": float(num_gpus), **resources}
    return {name: amount for name, amount in bundle.items() if amount > 0}


def strategy(alive_nodes: int) -> str:
    """PACK on one node (all ranks share it); SPREAD when there are more, so ranks land on
    different machines as Spell's --distributed did. Both are soft: Ray still places a
    group that only fits another way."""
    return "SPREAD" if alive_nodes > 1 else "PACK"


def describe(bundle: dict[str, float]) -> str:
    return "{" + ", ".join(f"{name}: {_amount(v)}" for name, v in sorted(bundle.items())) + "}"


def _amount(value: float) -> str:
    return f"{value:g}"


def fits(bundle: dict[str, float], node: dict[str, float]) -> int:
    """How many copies of ``bundle`` one node's resources hold."""
    return min(math.floor(node.get(name, 0.0) / need + 1e-9) for name, need in bundle.items())


@dataclass(frozen=True)
class Shortage:
    never: bool  # the cluster as it is cannot hold the group, however long we wait
    message: str


def shortage(count: int, bundle: dict[str, float], node_totals: list[dict[str, float]],
             available: dict[str, float]) -> Shortage:
    """Why ``count`` bundles are not placed: the cluster's nodes cannot hold them at all
    (``never``), or they could but other work holds the resources now."""
    wanted = f"{count} x {describe(bundle)}"
    room = sum(fits(bundle, node) for node in node_totals)
    totals: dict[str, float] = {}
    for node in node_totals:
        for name, amount in node.items():
            totals[name] = totals.get(name, 0.0) + amount
    have = ", ".join(f"{_amount(totals.get(name, 0.0))} {name} "
                     f"({_amount(available.get(name, 0.0))} free)" for name in sorted(bundle))
    where = f"the cluster has {have} on {len(node_totals)} node(s)"
    if room < count:
        biggest = max((fits(bundle, node) for node in node_totals), default=0)
        detail = ("no node can hold even one" if biggest == 0
                  else f"its nodes can hold {room} at most")
        return Shortage(True, f"--distributed needs {wanted} but {where}: {detail}; "
                              "use a smaller machine type (-t), fewer ranks, or add nodes")
    return Shortage(False, f"waiting for {wanted}: {where}; other runs hold the rest")

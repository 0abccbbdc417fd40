"""Which rank runs where, and the environment each rank's command gets: torch.distributed's
variables, and Horovod's gloo launcher's (the set horovodrun's gloo_run gives each slot).

Pure functions, so the arithmetic is tested without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RankSlot:
    """One rank: the placement group bundle it runs in, and where it sits in the world."""

    rank: int
    bundle: int
    node_id: str
    node_rank: int
    local_rank: int
    local_size: int
    world_size: int
    node_count: int


def assign_ranks(bundle_nodes: list[str]) -> list[RankSlot]:
    """Ranks for the bundles placed on ``bundle_nodes`` (node id per bundle index): grouped
    by node in the order nodes first appear, so a node's local ranks are contiguous (as
    horovodrun's get_host_assignments and torchrun allocate them). Ordered by rank."""
    nodes = list(dict.fromkeys(bundle_nodes))
    per_node = {node: [i for i, n in enumerate(bundle_nodes) if n == node] for node in nodes}
    slots: list[RankSlot] = []
    for node_rank, node in enumerate(nodes):
        for local_rank, bundle in enumerate(per_node[node]):
            slots.append(RankSlot(rank=len(slots), bundle=bundle, node_id=node,
                                  node_rank=node_rank, local_rank=local_rank,
                                  local_size=len(per_node[node]),
                                  world_size=len(bundle_nodes), node_count=len(nodes)))
    return slots


def torch_env(slot: RankSlot, master_addr: str, master_port: int) -> dict[str, str]:
    """What torch.distributed's env:// initialization (and torchrun's scripts) read."""
    return {
        "MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port),
        "RANK": str(slot.rank), "LOCAL_RANK": str(slot.local_rank),
        "WORLD_SIZE": str(slot.world_size), "LOCAL_WORLD_SIZE": str(slot.local_size),
        "NODE_RANK": str(slot.node_rank), "GROUP_RANK": str(slot.node_rank),
    }


def horovod_plan(slots: list[RankSlot]) -> list:
    """Horovod's own slot plan (horovod.runner's get_host_assignments) for these ranks, the
    Ray node id as host name: what its rendezvous server is initialized with."""
    from horovod.runner.common.util.hosts import HostInfo, get_host_assignments

    hosts = [HostInfo(s.node_id, s.local_size) for s in slots if s.local_rank == 0]
    plan = get_host_assignments(hosts, len(slots))
    # Both allocate ranks host by host in the same order: check rather than assume.
    assert [(p.hostname, p.local_rank) for p in plan] == \
        [(s.node_id, s.local_rank) for s in slots], "horovod's plan differs from the ranks"
    return plan


def horovod_env(slot_info: object, rendezvous_addr: str, rendezvous_port: int,
                iface: str | None) -> dict[str, str]:
    """The variables horovodrun's gloo launcher gives one slot (its own functions)."""
    from horovod.runner.gloo_run import create_run_env_vars, create_slot_env_vars

    env = {**create_run_env_vars(rendezvous_addr, [iface or "lo"], rendezvous_port),
           **create_slot_env_vars(slot_info)}
    if iface is None:  # unknown: let gloo pick, as horovod does without --network-interface
        env.pop("HOROVOD_GLOO_IFACE")
        env.pop("NCCL_SOCKET_IFNAME")
    return {key: str(value) for key, value in env.items()}


def iface_for(ip: str) -> str | None:
    """The network interface that holds ``ip`` on this machine (gloo binds to it)."""
    import socket

    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == ip for a in addresses):
            return name
    return None

"""Run on an on-prem head by `spell cluster update`, over SSH: hosts new to the config join
the cluster, and each worker whose Ray is running takes the machine type its host has in the
config now, without restarting any Ray.

The head's autoscaler made its node provider once, from the config it started with, and
Ray's local provider keeps its hosts in a state file on the head: Ray's own ``ClusterState``,
made with the new host list, adds the new hosts to that file, where the running provider
finds them free and the autoscaler starts Ray on them (min = max = the host count).

A machine type is the ``spellray-machine:<NAME>`` resource a node advertises, fixed when its
raylet starts. Ray's ResizeRayletResourceInstances (through the GCS; the KubeRay provider
uses it to resize pods in place) changes a live raylet's resources, so a retyped host drops
the old resource and takes the new one at once. A host busy with a run is left as it is: it
would otherwise hold both types, and take a run of its new type beside the old one.

    python -m spellray.cluster.host_types CLUSTER HEAD_IP '{"10.0.0.3": "T4", ...}'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from spellray.cluster.launcher_config import GCS_PORT, MACHINE_RESOURCE_PREFIX, machine_resource
from spellray.server import ray_capacity


def _live_nodes(gcs: Any) -> list[Any]:
    from ray.core.generated.autoscaler_pb2 import NodeStatus

    return [n for n in ray_capacity.resource_state(gcs).node_states
            if n.status in (NodeStatus.RUNNING, NodeStatus.IDLE)]


def _types_of(resources: dict[str, float]) -> set[str]:
    return {k[len(MACHINE_RESOURCE_PREFIX):] for k, v in resources.items()
            if k.startswith(MACHINE_RESOURCE_PREFIX) and v > 0}


def retype(gcs: Any, hosts: dict[str, str]) -> list[str]:
    """One line per host: what it is now, or why not yet."""
    said = []
    live = {n.node_ip_address: n for n in _live_nodes(gcs)}
    for ip, wanted in hosts.items():
        node = live.get(ip)
        if node is None:
            said.append(f"{ip}: its Ray is not running yet; it starts as {wanted}")
            continue
        total, free = dict(node.total_resources), dict(node.available_resources)
        had = _types_of(total)
        if had == {wanted}:
            said.append(f"{ip}: {wanted}")
            continue
        if any(free.get(machine_resource(t), 0) < total[machine_resource(t)] for t in had):
            said.append(f"{ip}: busy with a {'/'.join(sorted(had))} run; run spell cluster "
                        f"update again when it ends to make it {wanted}")
            continue
        target = {machine_resource(t): 0.0 for t in had - {wanted}}
        target[machine_resource(wanted)] = 1.0
        now = _types_of(gcs.resize_raylet_resource_instances(
            node.node_id.hex(), target, timeout_s=ray_capacity.GCS_TIMEOUT))
        if now != {wanted}:
            said.append(f"{ip}: Ray kept it {'/'.join(sorted(now)) or 'untyped'}; run spell "
                        f"cluster update again to make it {wanted}")
            continue
        said.append(f"{ip}: {'/'.join(sorted(had)) or 'untyped'} -> {wanted}")
    return said


def register(cluster: str, head_ip: str, hosts: dict[str, str]) -> str | None:
    """The hosts in the head's local-provider state (ones already there are kept as they
    are: running, or free); what went wrong, if anything."""
    from ray.autoscaler._private.local.config import get_lock_path, get_state_path
    from ray.autoscaler._private.local.node_provider import ClusterState

    state = Path(get_state_path(cluster))
    if not state.exists():  # made anew, it would call every running host free: not here
        return (f"the head's autoscaler keeps no host list at {state}; hosts new to the "
                "config join at the next spell cluster up")
    ClusterState(get_lock_path(cluster), str(state),
                 {"head_ip": head_ip, "worker_ips": list(hosts)})
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m spellray.cluster.host_types CLUSTER HEAD_IP HOSTS_JSON",
              file=sys.stderr)
        return 2
    from ray._raylet import GcsClient

    cluster, head_ip, hosts = argv[0], argv[1], json.loads(argv[2])
    if trouble := register(cluster, head_ip, hosts):
        print(trouble)
    for line in retype(GcsClient(address=f"{head_ip}:{GCS_PORT}"), hosts):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

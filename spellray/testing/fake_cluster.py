"""A Ray cluster on Ray's fake multi-node provider: the real autoscaler, with "machines"
that are extra raylets started on this machine. Used by the autoscaling tests and the
cluster_start benchmark, where no cloud exists.

Not ``ray.cluster_utils.AutoscalingCluster``: its start() and shutdown() run
``ray stop --force``, which would end every Ray process on the machine (other heads
included), it binds Ray's fixed default ports, and the ``fake_multinode`` defaults file it
reads is missing from the installed wheel. The same provider class (with lost machines
replaced: fake_node_provider.py) is loaded here as an ``external`` provider, with the head
on free 127.0.0.1 ports, in its own process group.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spellray.cluster import node_health
from spellray.cluster.launcher_config import node_type_for
from spellray.cluster.local import (
    RAY_STOP_GRACE,
    _spawn,
    _wait_until,
    ray_reachable,
    ray_temp_dir,
    stop_process_group,
)
from spellray.cluster.ray_auth import clients_token, ensure_token, token_env, token_file
from spellray.ports import free_port
from spellray.schemas import MachineType

FAKE_PROVIDER = "spellray.testing.fake_node_provider.FakeProviderReplacingLostNodes"


def fake_cluster_config(gcs_address: str, machine_types: list[MachineType],
                        idle_timeout_minutes: float, head_cpus: int) -> dict[str, Any]:
    """The autoscaling config the head's monitor reads: one node type per machine type,
    built by the same function as the cloud configs (only node_config differs)."""
    node_types = {t.name: node_type_for(t, node_config={}) for t in machine_types}
    node_types["ray.head.default"] = {"resources": {"CPU": head_cpus}, "node_config": {},
                                      "min_workers": 0, "max_workers": 0}
    return {
        "cluster_name": "fake",
        "max_workers": sum(t.max_machines for t in machine_types),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {"type": "external", "module": FAKE_PROVIDER,
                     "gcs_address": gcs_address, "disable_launch_config_check": True,
                     # Every fake node has this machine's IP: the autoscaler must tell
                     # them apart by node id (what Ray's own fake-cluster example sets).
                     "use_node_id_as_ip": True,
                     # Nodes start ready: nothing to set up over SSH.
                     "disable_node_updaters": True},
        "head_node_type": "ray.head.default",
        "available_node_types": node_types,
        "auth": {"ssh_user": "ray"},  # read when a node is restarted; never used
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


@dataclass
class FakeCluster:
    """A running fake cluster: its dashboard address (what spellray's server talks to), and
    the file with its Ray token (every fake node's raylet inherits the head's)."""

    pid: int
    token_file: Path
    dashboard_address: str
    gcs_address: str
    config_path: Path
    idle_timeout_minutes: float
    head_cpus: int

    def set_machine_types(self, machine_types: list[MachineType]) -> None:
        """Rewrite the autoscaling config; the autoscaler reloads it on its next pass (what
        `spell cluster update` does on a cloud cluster)."""
        config = fake_cluster_config(self.gcs_address, machine_types,
                                     self.idle_timeout_minutes, self.head_cpus)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.replace(self.config_path)

    def stop(self) -> None:
        # Worker raylets are children of the head's autoscaler monitor, in the head's group.
        stop_process_group(self.pid, timeout=RAY_STOP_GRACE)


def start_fake_cluster(folder: Path, machine_types: list[MachineType],
                       idle_timeout_minutes: float = 0.1, head_cpus: int = 2,
                       head_env: dict[str, str] | None = None) -> FakeCluster:
    """With Ray's token auth on, as every head spellray starts: the token of this process's
    clients if they have one, else a new one in ``folder``. ``head_env``: more environment
    for the head (its GCS, its autoscaler, and the fake nodes it starts)."""
    folder.mkdir(parents=True, exist_ok=True)
    token = clients_token() or ensure_token(token_file(folder))
    # Free on every interface (""): Ray binds some of them on the node's own address.
    gcs_port, dashboard_port = free_port(""), free_port("")
    gcs_address = f"127.0.0.1:{gcs_port}"
    config_path = folder / "autoscaling.json"
    config_path.write_text(json.dumps(fake_cluster_config(
        gcs_address, machine_types, idle_timeout_minutes, head_cpus)))
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    args = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start",
            "--head", "--block", "--port", str(gcs_port), "--node-ip-address", "127.0.0.1",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
            "--dashboard-agent-listen-port", "0",  # the OS's pick (cluster/local.py says why)
            "--ray-client-server-port", str(free_port("")), "--disable-usage-stats",
            "--num-cpus", str(head_cpus), f"--autoscaling-config={config_path}",
            "--temp-dir", ray_temp_dir(gcs_port)]
    log = folder / "ray-head.log"
    # The node health check every head spellray starts has (cluster/node_health.py).
    env = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1", **token_env(token),
           **node_health.HEAD_ENV, **(head_env or {})}
    process = _spawn(args, log, env)
    try:
        _wait_until(lambda: ray_reachable(dashboard), process, "the fake Ray cluster", log)
    except Exception:
        stop_process_group(process.pid, timeout=RAY_STOP_GRACE)
        raise
    return FakeCluster(pid=process.pid, token_file=token, dashboard_address=dashboard,
                       gcs_address=gcs_address,
                       config_path=config_path, idle_timeout_minutes=idle_timeout_minutes,
                       head_cpus=head_cpus)


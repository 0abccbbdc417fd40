"""Ray cluster launcher configs for AWS and GCP: written by `spell cluster init`, edited by
`spell cluster machine-type ...`. Pure functions over the config dict (no cloud, no Ray
import), plus load/save that validate against Ray's own schema before writing.

A machine type is a node type of the same name. Each machine of it advertises one unit of
the custom resource ``spellray-machine:<NAME>`` and a run with ``-t NAME`` asks for that one
unit (plus one CPU for the runner and all the machine's GPUs): one run per machine, as on
Spell, and a run with no free machine of its type makes the autoscaler start one.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from pathlib import Path
from typing import Any

import yaml

from spellray.cluster import node_health
from spellray.cluster.venv_field import shell_assignments
from spellray.errors import InvalidInput, NotFound
from spellray.schemas import MachineType

CONFIG_DIR = Path(__file__).parent / "configs"
CLOUDS = ("aws", "gcp")
ONPREM = "onprem"
MACHINE_RESOURCE_PREFIX = "spellray-machine:"
HEAD_NODE_TYPE = "head"
# Where spellray keeps what Ray does not interpret (prices, idle timeouts) in the config.
META_KEY = "spellray"
DEFAULT_IDLE_MINUTES = 10.0
SERVER_PORT = 8300
GCS_PORT = 6379  # the head's Ray --port
# Runners on workers write outputs and logs straight to storage: a folder on the head
# would not do.
STORAGE_SCHEMES = ("s3://", "gs://")


def machine_resource(name: str) -> str:
    """The Ray custom resource a machine type's nodes advertise (Ray allows any name
    without the reserved ``node:``/``accelerator_type:`` prefixes)."""
    return f"{MACHINE_RESOURCE_PREFIX}{name}"


def load_table() -> dict[str, dict[str, dict[str, Any]]]:
    """machine_types.yaml: cloud -> name -> instance type, cpus, gpus, memory, price."""
    return yaml.safe_load((CONFIG_DIR / "machine_types.yaml").read_text())


def _check_cloud(cloud: str) -> str:
    if cloud not in CLOUDS:
        raise InvalidInput(f"unknown cloud {cloud!r}; choose one of: {', '.join(CLOUDS)}")
    return cloud


def cloud_of(config: dict[str, Any]) -> str:
    """aws, gcp, or onprem (Ray's local provider: cluster/onprem.py)."""
    kind = config.get("provider", {}).get("type", "?")
    return ONPREM if kind == "local" else _check_cloud(kind)


def node_types_cloud(config: dict[str, Any]) -> str:
    """Machine-type edits are node-type edits, which an on-prem config has none of."""
    cloud = cloud_of(config)
    if cloud == ONPREM:
        raise InvalidInput("an on-prem cluster's machine types are its hosts': give hosts a "
                           "type with spell cluster machine-type add NAME --host IP")
    return cloud


def _meta(config: dict[str, Any]) -> dict[str, Any]:
    return config.setdefault("metadata", {}).setdefault(META_KEY, {"machine_types": {}})


# -- the node type of a machine type --------------------------------------------------------

def machine_type_from_table(cloud: str, name: str, instance_type: str | None = None,
                            **overrides: Any) -> MachineType:
    """A machine type from the table by name, or a custom one (``instance_type`` with
    cpus/gpus/memory_gb/price_per_hour in ``overrides``)."""
    table = load_table()[_check_cloud(cloud)]
    row = dict(table.get(name, {}))
    if instance_type:
        row["instance_type"] = instance_type
    elif not row:
        raise InvalidInput(f"unknown machine type {name!r} for {cloud}; use one of "
                           f"{', '.join(table)} or give --instance-type (with --cpus, --gpus, "
                           "--price)")
    row.update({k: v for k, v in overrides.items() if v is not None})
    return MachineType(
        name=name, num_cpus=1, num_gpus=row.get("gpus", 0),
        resources={machine_resource(name): 1},
        instance_type=row["instance_type"], machine_cpus=int(row.get("cpus", 1)),
        memory_gb=row.get("memory_gb"), price_per_hour=row.get("price_per_hour"),
        accelerator=row.get("accelerator"), min_machines=row.get("min_machines", 0),
        max_machines=row.get("max_machines", 2),
        idle_timeout_minutes=row.get("idle_timeout_minutes", DEFAULT_IDLE_MINUTES),
        spot=row.get("spot", False),
        default_auto_resume=row.get("default_auto_resume", False))


def _node_config(cloud: str, t: MachineType) -> dict[str, Any]:
    if cloud == "aws":
        config: dict[str, Any] = {"InstanceType": t.instance_type, "BlockDeviceMappings": [
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 100}}]}
        if t.spot:
            config["InstanceMarketOptions"] = {"MarketType": "spot"}
        return config
    family = "common-gpu" if t.num_gpus else "common-cpu"
    config = {"machineType": t.instance_type, "disks": [{
        "boot": True, "autoDelete": True, "type": "PERSISTENT",
        "initializeParams": {"diskSizeGb": 100, "sourceImage":
                             f"projects/deeplearning-platform-release/global/images/family/{family}"}}],
        "scheduling": {"preemptible": t.spot,
                       # GPU machines cannot live-migrate; preemptible ones must terminate.
                       "onHostMaintenance": "TERMINATE" if t.num_gpus or t.spot else "MIGRATE"}}
    if t.accelerator:
        config["guestAccelerators"] = [{"acceleratorType": t.accelerator,
                                        "acceleratorCount": int(t.num_gpus)}]
    return config


def node_type_for(t: MachineType, node_config: dict[str, Any]) -> dict[str, Any]:
    """The available_node_types entry of a machine type. ``idle_timeout_s`` is per node type
    in Ray's schema and honoured by autoscaler v2, which the head starts with."""
    resources: dict[str, int] = {"CPU": int(t.machine_cpus or t.num_cpus),
                                 machine_resource(t.name): 1}
    if t.num_gpus:
        resources["GPU"] = int(t.num_gpus)
    node_type: dict[str, Any] = {"resources": resources, "node_config": node_config,
                                 "min_workers": t.min_machines, "max_workers": t.max_machines}
    if t.idle_timeout_minutes is not None:
        node_type["idle_timeout_s"] = t.idle_timeout_minutes * 60
    return node_type


def _sync_totals(config: dict[str, Any]) -> None:
    """Cluster-wide fields that follow the machine types: max_workers (the sum), and
    idle_timeout_minutes (the smallest: autoscaler v1, which ignores per-type timeouts)."""
    workers = [nt for name, nt in config["available_node_types"].items()
               if name != HEAD_NODE_TYPE]
    config["max_workers"] = sum(nt.get("max_workers", 0) for nt in workers)
    timeouts = [nt["idle_timeout_s"] / 60 for nt in workers if "idle_timeout_s" in nt]
    config["idle_timeout_minutes"] = min(timeouts, default=DEFAULT_IDLE_MINUTES)


# -- machine-type add | list | scale | delete ---------------------------------------------------

def list_machine_types(config: dict[str, Any]) -> list[MachineType]:
    meta = _meta(config)["machine_types"]
    if cloud_of(config) == ONPREM:  # kept whole in the metadata (cluster/onprem.py)
        return [MachineType.model_validate(raw) for raw in meta.values()]
    found = []
    for name, node_type in config["available_node_types"].items():
        if name == HEAD_NODE_TYPE:
            continue
        extra = meta.get(name, {})
        resources = node_type["resources"]
        found.append(MachineType(
            name=name, num_cpus=1, num_gpus=resources.get("GPU", 0),
            resources={machine_resource(name): 1},
            instance_type=extra.get("instance_type"), machine_cpus=resources.get("CPU"),
            memory_gb=extra.get("memory_gb"), price_per_hour=extra.get("price_per_hour"),
            accelerator=extra.get("accelerator"),
            min_machines=node_type.get("min_workers", 0),
            max_machines=node_type.get("max_workers", 0),
            idle_timeout_minutes=node_type.get("idle_timeout_s", 60 * DEFAULT_IDLE_MINUTES) / 60,
            spot=bool(extra.get("spot")),
            default_auto_resume=bool(extra.get("default_auto_resume"))))
    return found


def _check_bounds(min_machines: int, max_machines: int, idle: float | None) -> None:
    if min_machines < 0 or max_machines < 0:
        raise InvalidInput("--min and --max must be 0 or more")
    if min_machines > max_machines:
        raise InvalidInput(f"--min {min_machines} is more than --max {max_machines}; "
                           "raise --max or lower --min")
    if idle is not None and idle <= 0:
        raise InvalidInput("--idle-timeout must be more than 0 minutes")


def add_machine_type(config: dict[str, Any], t: MachineType) -> None:
    if t.name == HEAD_NODE_TYPE or t.name in config["available_node_types"]:
        raise InvalidInput(f"machine type {t.name!r} already exists; change it with "
                           f"`spell cluster machine-type scale {t.name}` or delete it first")
    _check_bounds(t.min_machines, t.max_machines, t.idle_timeout_minutes)
    cloud = node_types_cloud(config)
    config["available_node_types"][t.name] = node_type_for(t, _node_config(cloud, t))
    _meta(config)["machine_types"][t.name] = {
        "instance_type": t.instance_type, "memory_gb": t.memory_gb,
        "price_per_hour": t.price_per_hour, "accelerator": t.accelerator, "spot": t.spot,
        "default_auto_resume": t.default_auto_resume}
    _sync_totals(config)


def _node_type(config: dict[str, Any], name: str) -> dict[str, Any]:
    node_types_cloud(config)
    if name == HEAD_NODE_TYPE or name not in config["available_node_types"]:
        known = [n for n in config["available_node_types"] if n != HEAD_NODE_TYPE]
        has = ", ".join(known) or "none (add one with spell cluster machine-type add)"
        raise NotFound(f"no machine type {name!r} in this cluster; it has: {has}")
    return config["available_node_types"][name]


def scale_machine_type(config: dict[str, Any], name: str, min_machines: int | None = None,
                       max_machines: int | None = None,
                       idle_timeout_minutes: float | None = None) -> None:
    node_type = _node_type(config, name)
    new_min = node_type.get("min_workers", 0) if min_machines is None else min_machines
    new_max = node_type.get("max_workers", 0) if max_machines is None else max_machines
    _check_bounds(new_min, new_max, idle_timeout_minutes)
    node_type.update(min_workers=new_min, max_workers=new_max)
    if idle_timeout_minutes is not None:
        node_type["idle_timeout_s"] = idle_timeout_minutes * 60
    _sync_totals(config)


def delete_machine_type(config: dict[str, Any], name: str) -> None:
    _node_type(config, name)
    del config["available_node_types"][name]
    _meta(config)["machine_types"].pop(name, None)
    _sync_totals(config)


# -- init ------------------------------------------------------------------------------------

def head_start_commands(storage_uri: str, server_port: int = SERVER_PORT,
                        node_ip: str | None = None) -> list[str]:
    """Ray with token authentication, its dashboard on 127.0.0.1 only, autoscaler v2 (it
    honours each machine type's idle timeout), then the spellray server. ``node_ip``: an
    on-prem head, whose address is known (Ray's own guess needs a default route) and whose
    fixed hosts need no autoscaler v2 (Ray's local provider is v1's). The server listens
    on all the head's interfaces: workers' runners report to its private address, the
    laptop's SSH tunnel (`spell cluster use`) reaches it on 127.0.0.1, and the launcher's
    security group / firewall admits only SSH from outside the cluster's network."""
    # The environment plugin: runs' --pip environments hold only their own packages.
    # Explicit 0 on-prem: Ray's launcher exports 1 before these commands (RAY_UP_enable_
    # autoscaler_v2), and v2 does not start the local provider's workers.
    v2 = f" RAY_enable_autoscaler_v2={0 if node_ip else 1}"
    ray_env = f"export RAY_AUTH_MODE=token{v2} {shell_assignments()}"
    # shlex.quote: the URI goes into a shell line. The server keeps users' SSH keys (`spell
    # keys`) in a block of the head's authorized_keys, each allowed only the tunnel to it.
    server_env = (f"SPELLRAY_HOME=$HOME/.spellray SPELLRAY_RAY_ADDRESS=http://127.0.0.1:8265"
                  f" SPELLRAY_STORAGE_URI={shlex.quote(storage_uri)}"
                  " SPELLRAY_AUTHORIZED_KEYS_FILE=$HOME/.ssh/authorized_keys")
    private_ip = node_ip or "$(hostname -I | awk '{print $1}')"
    node_flag = f" --node-ip-address={node_ip}" if node_ip else ""
    # Its GCS declares a lost node dead in seconds, not Ray's 15 (node_health.py says why).
    health = node_health.shell_assignments()
    return [
        "ray stop",
        f"{ray_env} {health}; ulimit -n 65536; ray start --head --port={GCS_PORT}"
        " --object-manager-port=8076 --autoscaling-config=~/ray_bootstrap_config.yaml"
        f" --dashboard-host=127.0.0.1 --disable-usage-stats{node_flag}",
        # [s]: the pattern must not match the shell running pkill (its command line holds
        # the pattern), or pkill ends that shell and the launcher sees the step fail.
        "pkill -f '[s]pellray.server --host' || true",
        f"{ray_env} {server_env}; nohup python -m spellray.server --host 0.0.0.0"
        f" --port {server_port}"
        f" --advertise-url http://{private_ip}:{server_port}"
        " >> $HOME/.spellray/server.log 2>&1 < /dev/null &",
    ]


# sshd's per-key permitlisten does not cover Unix sockets: without this a user's key
# (server/authorized_keys.py) could make a socket anywhere the head's user may write. Local
# forwards are unchanged (permitopen refuses every socket). Not fatal: said on failure.
SSHD_HARDENING = (
    "{ echo 'AllowStreamLocalForwarding local' | sudo -n tee"
    " /etc/ssh/sshd_config.d/spellray.conf >/dev/null && (sudo -n systemctl reload ssh"
    " || sudo -n systemctl reload sshd || sudo -n service ssh reload); } || echo 'spellray:"
    " could not set AllowStreamLocalForwarding local for sshd: spell keys may"
    " forward Unix sockets' >&2")


def init_config(cloud: str, name: str, *, region: str | None = None, zone: str | None = None,
                project: str | None = None, storage_uri: str, spellray_pip: str,
                spellray_token: str,
                ray_token_path: Path, machine_types: list[str] | None = None) -> dict[str, Any]:
    """A complete cluster config: the cloud's template, filled in, with machine types from
    the table (default: CPU, min 0, max 2)."""
    _check_cloud(cloud)
    if not storage_uri.startswith(STORAGE_SCHEMES):
        raise InvalidInput(f"--storage {storage_uri!r}: a cluster's nodes share object "
                           "storage; give s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
    if cloud == "gcp" and not project:
        raise InvalidInput("GCP needs a project: spell cluster init gcp --project MY-PROJECT")
    config = yaml.safe_load((CONFIG_DIR / f"{cloud}.yaml").read_text())
    config["cluster_name"] = name
    provider = config["provider"]
    if region:
        provider["region"] = region
    if cloud == "aws" and zone:
        provider["availability_zone"] = zone
    if cloud == "gcp":
        provider["project_id"] = project
        provider["availability_zone"] = zone or f"{provider['region']}-a"
    # Every node joins Ray with the same token (Ray reads ~/.ray/auth_token).
    config["file_mounts"] = {"~/.ray/auth_token": str(ray_token_path),
                             "~/.spellray/machine_types.json":
                                 str(ray_token_path.parent / "machine_types.json")}
    config["setup_commands"] = [f"pip install -q 'ray[default]==2.60.0' {spellray_pip}"]
    # The spellray admin token only on the head (a file mount would reach every worker,
    # where user code runs). umask: readable by the head's user only.
    config["head_setup_commands"] = [
        "mkdir -p ~/.spellray && (umask 077 && echo " + spellray_token + " > ~/.spellray/token)",
        "pip install -q 'boto3>=1.4.8' google-api-python-client",
        SSHD_HARDENING,
    ]
    config["head_start_ray_commands"] = head_start_commands(storage_uri)
    config["worker_start_ray_commands"] = [
        "ray stop",
        f"export RAY_AUTH_MODE=token {shell_assignments()}; ulimit -n 65536;"
        f" ray start --address=$RAY_HEAD_IP:{GCS_PORT}"
        " --object-manager-port=8076 --disable-usage-stats"]
    _meta(config)["cloud"] = cloud
    for machine in machine_types or ["CPU"]:
        add_machine_type(config, machine_type_from_table(cloud, machine))
    return config


def new_token() -> str:
    return secrets.token_urlsafe(32)


# -- files -----------------------------------------------------------------------------------

def validate(config: dict[str, Any]) -> None:
    """Ray's own schema check (ray/autoscaler/ray-schema.json), as one line."""
    from ray.autoscaler._private.util import validate_config

    try:
        validate_config(config)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidInput(f"the cluster config is not valid for Ray: {first[:300]}") from exc


def load_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise NotFound(f"no cluster config at {path}; create one with: spell cluster init aws")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(config, dict) or ("available_node_types" not in config and
                                        config.get("provider", {}).get("type") != "local"):
        raise InvalidInput(f"{path} is not a Ray cluster config with available_node_types")
    return config


def save_config(path: Path, config: dict[str, Any]) -> None:
    """Validate, then replace the file in one step: a bad edit leaves the old file as it was.
    Mode 0600: the config holds the cluster's spellray token."""
    validate(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)
    # What the head's server loads as its machine types (a file mount puts it on the head).
    types = [t.model_dump(exclude_none=True) for t in list_machine_types(config)]
    (path.parent / "machine_types.json").write_text(json.dumps(types, indent=2))

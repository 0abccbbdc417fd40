"""`spell cluster init onprem`: a Ray cluster launcher config for machines you already have
(Ray's on-premises provider, ``provider: type: local``), reached over SSH.

Ray's local provider has one node type and no ``available_node_types`` (its prepare_local
refuses them), so a machine type is not a node type here: each worker host is given one at
init (``--worker-ip IP=TYPE``, default CPU) and advertises that type's resource when its Ray
starts (a shell ``case`` on the host's own address picks it). The head runs what an AWS or
GCP head runs: Ray with token authentication, its dashboard on 127.0.0.1, the spellray server.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from pathlib import Path
from typing import Any

from spellray.cluster import launcher_config as lc
from spellray.cluster.venv_field import shell_assignments
from spellray.errors import InvalidInput
from spellray.schemas import MachineType

PROVIDER = "local"  # Ray's name for its on-premises provider
DEFAULT_TYPE = "CPU"


def is_onprem(config: dict[str, Any]) -> bool:
    return config.get("provider", {}).get("type") == PROVIDER


def _address(text: str, flag: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise InvalidInput(f"{flag} {text!r} is not an IP address; e.g. {flag} 10.0.0.5") \
            from None


def parse_workers(worker_ips: list[str]) -> dict[str, str]:
    """``IP`` or ``IP=TYPE`` per --worker-ip, as address -> machine type name."""
    hosts: dict[str, str] = {}
    for raw in worker_ips:
        ip, _, name = raw.partition("=")
        address = _address(ip, "--worker-ip")
        name = name.strip() or DEFAULT_TYPE
        if not name.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput(f"--worker-ip {raw!r}: machine type {name!r} must be letters, "
                               "digits, - and _")
        if address in hosts:
            raise InvalidInput(f"--worker-ip {address} is given twice; list each host once")
        hosts[address] = name
    return hosts


def check_hosts(head_ip: str, worker_ips: list[str], ssh_key: Path) -> tuple[str, dict[str, str]]:
    head = _address(head_ip, "--head-ip")
    if not worker_ips:
        raise InvalidInput("give at least one --worker-ip: runs never land on the head")
    hosts = parse_workers(worker_ips)
    if head in hosts:
        raise InvalidInput(f"{head} is both --head-ip and a --worker-ip; a host is one or the "
                           "other")
    if not ssh_key.expanduser().is_file():
        raise InvalidInput(f"--ssh-key {ssh_key}: no such file; give the private key that "
                           "logs in to every host")
    return head, hosts


def machine_types(hosts: dict[str, str]) -> list[MachineType]:
    """One machine type per distinct name, its machine count the hosts that have it. GPUs:
    the AWS table's count when the name is one of its (T4, V100, ...), else none."""
    table = lc.load_table()["aws"]
    found = []
    for name in dict.fromkeys(hosts.values()):
        count = sum(1 for t in hosts.values() if t == name)
        gpus = table.get(name, {}).get("gpus", 0)
        found.append(MachineType(
            name=name, num_cpus=1, num_gpus=gpus, resources={lc.machine_resource(name): 1},
            min_machines=count, max_machines=count))
    return found


def _resources(machine_type: str) -> str:
    return shlex.quote(json.dumps({lc.machine_resource(machine_type): 1}))


def worker_start_commands(hosts: dict[str, str]) -> list[str]:
    """Each worker finds itself in the host table by its own addresses, then starts Ray
    with that address and its machine type's resource."""
    cases = " ".join(
        f"*' {ip} '*) NODE_IP={ip} RESOURCES={_resources(t)};;" for ip, t in hosts.items())
    find = (f'case " $(hostname -I) " in {cases} *) echo "spellray: this host is not one of'
            f' the cluster\'s --worker-ip addresses" >&2; exit 1;; esac')
    return [
        "ray stop",
        f"{find}; export RAY_AUTH_MODE=token {shell_assignments()}; ulimit -n 65536;"
        ' ray start --address=$RAY_HEAD_IP:6379 --node-ip-address=$NODE_IP'
        ' --resources="$RESOURCES" --object-manager-port=8076 --disable-usage-stats']


def init_config(name: str, *, head_ip: str, worker_ips: list[str], ssh_user: str,
                ssh_key: Path, storage_uri: str, spellray_token: str, ray_token_path: Path,
                setup_commands: list[str] | None = None) -> dict[str, Any]:
    """A complete on-prem cluster config. The hosts need Python with Ray and spellray on
    the SSH user's PATH (or ``setup_commands`` that install them)."""
    head, hosts = check_hosts(head_ip, worker_ips, ssh_key)
    if not storage_uri.startswith(lc.STORAGE_SCHEMES) and not storage_uri.startswith("/"):
        raise InvalidInput(f"--storage {storage_uri!r}: give a folder every host mounts at "
                           "the same absolute path (NFS), or s3://BUCKET/PREFIX")
    types = machine_types(hosts)
    config: dict[str, Any] = {
        "cluster_name": name,
        # Every listed host is kept in the cluster: Ray's local provider caps at the list.
        "max_workers": len(hosts),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "provider": {"type": PROVIDER, "head_ip": head, "worker_ips": list(hosts)},
        "auth": {"ssh_user": ssh_user, "ssh_private_key": str(ssh_key.expanduser().resolve())},
        "file_mounts": {"~/.ray/auth_token": str(ray_token_path),
                        "~/.spellray/machine_types.json":
                            str(ray_token_path.parent / "machine_types.json")},
        "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [],
        "setup_commands": list(setup_commands or []),
        "head_setup_commands": [
            "mkdir -p ~/.spellray && (umask 077 && echo " + spellray_token
            + " > ~/.spellray/token)",
            lc.SSHD_HARDENING],
        "worker_setup_commands": [],
        # No autoscaler v2: the hosts are fixed, there is nothing to scale or time out.
        "head_start_ray_commands": lc.head_start_commands(storage_uri, node_ip=head),
        "worker_start_ray_commands": worker_start_commands(hosts),
        "metadata": {lc.META_KEY: {
            "cloud": "onprem", "hosts": hosts,
            "machine_types": {t.name: t.model_dump(exclude_none=True) for t in types}}},
    }
    return config



# What `spell cluster down` runs on every host: Ray's teardown on the local provider only
# marks the hosts free in its state file, leaving their Ray (and the head's server) running.
STOP_HOST = "pkill -f '[s]pellray.server --host'; ray stop"


def ssh_command(config: dict[str, Any], ip: str, command: str) -> list[str]:
    """``command`` on host ``ip`` in a login shell (where the launcher's commands find Ray)."""
    auth = config["auth"]
    return ["ssh", "-i", auth["ssh_private_key"], "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=20", f"{auth['ssh_user']}@{ip}",
            f"bash --login -c {shlex.quote(command)}"]


def hosts_of(config: dict[str, Any]) -> list[str]:
    """The head first: once its autoscaler is stopped, nothing starts a worker's Ray again."""
    provider = config["provider"]
    return [provider["head_ip"], *provider["worker_ips"]]

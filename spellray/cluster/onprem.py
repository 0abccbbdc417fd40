"""`spell cluster init onprem`: a Ray cluster launcher config for machines you already have
(Ray's on-premises provider, ``provider: type: local``), reached over SSH.

Ray's local provider has one node type and no ``available_node_types`` (its prepare_local
refuses them), so a machine type is not a node type here: each worker host is given one at
init (``--worker-ip IP=TYPE``, default CPU) or later (`spell cluster machine-type add TYPE
--host IP`, which also adds new hosts) and advertises that type's resource when its Ray
starts (a shell ``case`` on the host's own address picks it). `spell cluster update` gives a
running host its new type in place (cluster/host_types.py, run on the head). The head runs
what an AWS or GCP head runs: Ray with token authentication, its dashboard on 127.0.0.1, the
spellray server.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from pathlib import Path
from typing import Any

from spellray.cluster import launcher_config as lc
from spellray.cluster.venv_field import shell_assignments
from spellray.errors import InvalidInput, NotFound, SpellrayError
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


def _type_name(name: str, given: str) -> str:
    if not name.replace("-", "").replace("_", "").isalnum() or name == lc.HEAD_NODE_TYPE:
        raise InvalidInput(f"{given}: machine type {name!r} must be letters, digits, - and _ "
                           f"(and not {lc.HEAD_NODE_TYPE!r})")
    return name


def parse_workers(worker_ips: list[str]) -> dict[str, str]:
    """``IP`` or ``IP=TYPE`` per --worker-ip, as address -> machine type name."""
    hosts: dict[str, str] = {}
    for raw in worker_ips:
        ip, _, name = raw.partition("=")
        address = _address(ip, "--worker-ip")
        name = _type_name(name.strip() or DEFAULT_TYPE, f"--worker-ip {raw!r}")
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


def machine_types(hosts: dict[str, str],
                  given: dict[str, dict[str, Any]] | None = None) -> list[MachineType]:
    """One machine type per distinct name, its machine count the hosts that have it. GPUs
    and price: as ``given`` (an earlier `machine-type add --gpus/--price`), else the AWS
    table's GPU count when the name is one of its (T4, V100, ...), else none."""
    table = lc.load_table()["aws"]
    found = []
    for name in dict.fromkeys(hosts.values()):
        count = sum(1 for t in hosts.values() if t == name)
        kept = (given or {}).get(name, {})
        found.append(MachineType(
            name=name, num_cpus=1,
            num_gpus=kept.get("num_gpus", table.get(name, {}).get("gpus", 0)),
            price_per_hour=kept.get("price_per_hour"),
            resources={lc.machine_resource(name): 1}, min_machines=count, max_machines=count))
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
        f' ray start --address=$RAY_HEAD_IP:{lc.GCS_PORT} --node-ip-address=$NODE_IP'
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
    config: dict[str, Any] = {
        "cluster_name": name,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "provider": {"type": PROVIDER, "head_ip": head},
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
        "metadata": {lc.META_KEY: {"cloud": "onprem"}},
    }
    _set_hosts(config, hosts)
    return config


def _set_hosts(config: dict[str, Any], hosts: dict[str, str]) -> None:
    """Everything in the config that follows the host table: the provider's list (every
    listed host is kept in the cluster: Ray's local provider caps at the list), the workers'
    start command, and the machine types the head's server loads."""
    meta = config["metadata"][lc.META_KEY]
    types = machine_types(hosts, meta.get("machine_types"))
    config["provider"]["worker_ips"] = list(hosts)
    config["max_workers"] = len(hosts)
    config["worker_start_ray_commands"] = worker_start_commands(hosts)
    meta["hosts"] = hosts
    meta["machine_types"] = {t.name: t.model_dump(exclude_none=True) for t in types}


def hosts_table(config: dict[str, Any]) -> dict[str, str]:
    """Worker address -> machine type, as the config has them now."""
    return dict(config["metadata"][lc.META_KEY]["hosts"])


def set_hosts_type(config: dict[str, Any], name: str, host_ips: list[str], *,
                   gpus: float | None = None, price: float | None = None) -> None:
    """`spell cluster machine-type add NAME --host IP...` on-prem: these hosts are of type
    NAME from now on; a host not yet in the cluster joins it. A type no host has any more
    goes away."""
    name = _type_name(name, "machine-type add")
    if not host_ips:
        raise InvalidInput("an on-prem machine type is the hosts that have it: give them "
                           "with --host IP (repeat it)")
    hosts = hosts_table(config)
    head = config["provider"]["head_ip"]
    chosen: list[str] = []
    for raw in host_ips:
        address = _address(raw, "--host")
        if address == head:
            raise InvalidInput(f"--host {address} is the head; runs never land on it")
        if address in chosen:
            raise InvalidInput(f"--host {address} is given twice; list each host once")
        chosen.append(address)
    meta = config["metadata"][lc.META_KEY].setdefault("machine_types", {})
    kept = meta.setdefault(name, {})
    if gpus is not None:
        if gpus < 0:
            raise InvalidInput("--gpus must be 0 or more")
        kept["num_gpus"] = gpus
    if price is not None:
        if price < 0:
            raise InvalidInput("--price must be 0 or more")
        kept["price_per_hour"] = price
    hosts.update(dict.fromkeys(chosen, name))
    _set_hosts(config, hosts)


def refuse_node_type_edit(config: dict[str, Any], name: str, edit: str) -> None:
    """`machine-type scale | delete` on-prem: a type's machines are the hosts given it."""
    holders = [ip for ip, t in hosts_table(config).items() if t == name]
    if not holders:
        known = ", ".join(sorted(set(hosts_table(config).values())))
        raise NotFound(f"no machine type {name!r} in this cluster; it has: {known}")
    if edit == "scale":
        raise InvalidInput(f"an on-prem machine type has one machine per host ({name}: "
                           f"{', '.join(holders)}); add hosts with spell cluster machine-type "
                           f"add {name} --host IP")
    raise InvalidInput(f"machine type {name!r} is the type of {', '.join(holders)}; give "
                       "them another (spell cluster machine-type add OTHER --host IP) and "
                       f"{name!r} goes away")



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


def run_on_host(config: dict[str, Any], ip: str, command: str,
                timeout: float) -> tuple[str | None, str]:
    """``command`` on host ``ip`` over SSH: (None, its output) when it succeeded, else
    (one line saying why, "")."""
    import subprocess

    try:
        done = subprocess.run(ssh_command(config, ip, command), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer over SSH in {timeout:g} s", ""
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:300], ""
    return None, done.stdout


def apply_hosts(config: dict[str, Any]) -> list[str]:
    """`spell cluster update`: new hosts join, and each worker whose Ray runs takes its type
    from the host table now (cluster/host_types.py, run on the head over SSH); one line per
    host."""
    head = config["provider"]["head_ip"]
    command = (f"RAY_AUTH_MODE=token python -m spellray.cluster.host_types "
               f"{shlex.quote(config['cluster_name'])} {head} "
               + shlex.quote(json.dumps(hosts_table(config))))
    failed, said = run_on_host(config, head, command, timeout=120)
    if failed:
        raise SpellrayError(f"could not give the hosts their machine types on the head "
                            f"{head}: {failed}")
    return said.strip().splitlines()

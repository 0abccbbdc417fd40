"""`spell cluster init | up | update | down | use`: the Ray cluster launcher's SDK
(``ray.autoscaler.sdk``) behind spellray's cluster folders.

A cluster lives in SPELLRAY_HOME/clusters/<name>/: cluster.yaml (the launcher config, 0600),
machine_types.json (mounted on the head for its server), ray_auth_token (every node's Ray
token). Credentials are checked before the SDK is called, so a laptop with none gets one
line, not a boto3 traceback.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spellray import __version__
from spellray.cluster import launcher_config, onprem, registry
from spellray.errors import Conflict, InvalidInput, SpellrayError
from spellray.ports import free_port
from spellray.settings import Settings

CONFIG_NAME = "cluster.yaml"
# Seconds `use` waits for the head's server through a new tunnel (it starts after Ray).
SERVER_WAIT = 180.0


def cluster_dir(settings: Settings, name: str) -> Path:
    return settings.home / "clusters" / name


def config_path(settings: Settings, name: str) -> Path:
    return cluster_dir(settings, name) / CONFIG_NAME


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def init_cluster(settings: Settings, cloud: str, name: str, *, region: str | None,
                 zone: str | None, project: str | None, storage: str,
                 machine_types: list[str] | None,
                 spellray_pip: str | None, path: Path | None = None, force: bool = False) -> Path:
    """Write a complete cluster config and register the cluster (not started: `up`)."""
    return _write_cluster(settings, name, path, force, lambda token, token_path:
                          launcher_config.init_config(
        cloud, name, region=region, zone=zone, project=project, storage_uri=storage,
        spellray_pip=spellray_pip or f"spellray=={__version__}",
        spellray_token=token, ray_token_path=token_path,
        machine_types=machine_types))


def init_onprem_cluster(settings: Settings, name: str, *, head_ip: str, worker_ips: list[str],
                        ssh_user: str, ssh_key: Path, storage: str,
                        setup_commands: list[str] | None = None, path: Path | None = None,
                        force: bool = False) -> Path:
    """`spell cluster init onprem`: hosts you have, reached over SSH (cluster/onprem.py)."""
    return _write_cluster(settings, name, path, force, lambda token, token_path:
                          onprem.init_config(
        name, head_ip=head_ip, worker_ips=worker_ips, ssh_user=ssh_user, ssh_key=ssh_key,
        storage_uri=storage, spellray_token=token, ray_token_path=token_path,
        setup_commands=setup_commands))


def _write_cluster(settings: Settings, name: str, path: Path | None, force: bool,
                   make: Callable[[str, Path], dict[str, Any]]) -> Path:
    if name == registry.LOCAL or not name.replace("-", "").isalnum():
        raise InvalidInput(f"invalid cluster name {name!r}; use letters, digits and dashes")
    target = path or config_path(settings, name)
    if target.exists() and not force:
        raise Conflict(f"{target} exists; edit it with spell cluster machine-type, "
                       "or pass --force to start over")
    token_path = target.parent / "ray_auth_token"
    spellray_token = launcher_config.new_token()
    config = make(spellray_token, token_path)
    launcher_config.save_config(target, config)  # validates first: nothing written if bad
    _write_secret(token_path, launcher_config.new_token())
    registry.save(settings.home, registry.ClusterEntry(
        name=name, token=spellray_token, config_path=str(target)))
    return target


def cluster_config_file(settings: Settings, name: str | None) -> Path:
    """The config of the named cluster, else of the one in use."""
    if name is None:
        entry = registry.selected_cluster(settings.home)
        made = [e.name for e in registry.list_clusters(settings.home)[1] if e.config_path]
        if entry is None and len(made) != 1:
            raise InvalidInput("which cluster? name it with --cluster/-c (or as the argument); "
                               f"made with spell cluster init: {', '.join(made) or 'none'}")
        name = entry.name if entry else made[0]
    entry = registry.get(settings.home, name)
    if not entry.config_path:
        raise InvalidInput(f"cluster {name!r} was registered by URL; it has no launcher "
                           "config to edit or start")
    return Path(entry.config_path)


# -- the cloud edge ----------------------------------------------------------------------------

def check_credentials(cloud: str, config: dict[str, Any] | None = None) -> None:
    """One line instead of the SDK's traceback when the laptop cannot reach the cloud."""
    if cloud == launcher_config.ONPREM:  # SSH is all: the key must still be there
        key = Path((config or {}).get("auth", {}).get("ssh_private_key", ""))
        if not key.is_file():
            raise InvalidInput(f"the cluster's SSH key {key} is missing; put it back or "
                               "write the config again with spell cluster init onprem")
        return
    if cloud == "aws":
        import boto3

        if boto3.Session().get_credentials() is None:
            raise InvalidInput("no AWS credentials: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, or run `aws configure`")
        return
    try:
        import googleapiclient  # noqa: F401  (Ray's GCP launcher needs it)
    except ImportError as exc:
        raise InvalidInput("the GCP launcher needs Google's client: "
                           "pip install google-api-python-client") from exc
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError as exc:
        raise InvalidInput("no GCP credentials: run `gcloud auth application-default "
                           "login` or set GOOGLE_APPLICATION_CREDENTIALS") from exc


def _prepared(path: Path) -> dict[str, Any]:
    config = launcher_config.load_config(path)
    launcher_config.validate(config)
    check_credentials(launcher_config.cloud_of(config), config)
    return config


def _sdk_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except SpellrayError:
        raise
    except Exception as exc:  # botocore / googleapiclient errors, SSH failures, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SpellrayError(f"the Ray cluster launcher could not {what}: {first[:300]}") from exc


def up(settings: Settings, name: str | None, no_restart: bool = False) -> str:
    """Create the cluster, or apply an edited config (`update`: no Ray restart, so running
    work and the server's state survive). Returns the head node's IP."""
    from ray.autoscaler import sdk

    path = cluster_config_file(settings, name)
    config = _prepared(path)
    _sdk_call("start the cluster", sdk.create_or_update_cluster, str(path),
              no_restart=no_restart)
    return _sdk_call("find the head node", sdk.get_head_node_ip, config)


def update(settings: Settings, name: str | None) -> tuple[str, list[str]]:
    """`spell cluster update`: the edited config applied without restarting Ray. On-prem,
    new hosts join and hosts whose machine type changed take it in place; one line per host
    says so."""
    from ray.autoscaler import sdk

    config = _prepared(cluster_config_file(settings, name))
    cluster = config["cluster_name"]
    try:  # Ray's launcher would start a whole new cluster where none is up
        sdk.get_head_node_ip(config)
    except RuntimeError as exc:
        if "not found" not in str(exc):
            raise SpellrayError(f"the Ray cluster launcher could not find the head node: "
                                f"{str(exc)[:300]}") from exc
        raise InvalidInput(f"cluster {cluster} is not up, so there is nothing to update; "
                           f"start it with spell cluster up {cluster}") from None
    head = up(settings, name, no_restart=True)
    return head, onprem.apply_hosts(config) if onprem.is_onprem(config) else []


def down(settings: Settings, name: str | None) -> list[str]:
    """Tear the cluster down; what could not be stopped (on-prem hosts out of reach)."""
    from ray.autoscaler import sdk

    path = cluster_config_file(settings, name)
    config = _prepared(path)
    entry = registry.get(settings.home, config["cluster_name"])
    close_tunnel(entry)
    problems = _stop_onprem_hosts(config) if onprem.is_onprem(config) else []
    _sdk_call("tear the cluster down", sdk.teardown_cluster, str(path))
    return problems


def _stop_onprem_hosts(config: dict[str, Any]) -> list[str]:
    problems = []
    for ip in onprem.hosts_of(config):
        failed, _ = onprem.run_on_host(config, ip, onprem.STOP_HOST, timeout=180)
        if failed:
            problems.append(f"{ip}: {failed}")
    return problems


# -- reaching the head's server ----------------------------------------------------------------

def ssh_tunnel(entry: registry.ClusterEntry, remote_port: int) -> tuple[list[str], str]:
    """The ssh command that forwards a free local port to ``remote_port`` on the head's
    127.0.0.1 (the launcher's key and user), and the local URL it serves."""
    from ray.autoscaler import sdk
    from ray.autoscaler._private.commands import _bootstrap_config

    path = Path(entry.config_path)
    config = _prepared(path)
    head_ip = _sdk_call("find the head node (is the cluster up?)", sdk.get_head_node_ip, config)
    auth = _sdk_call("read the cluster's SSH settings", _bootstrap_config, config)["auth"]
    port = free_port()
    args = ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=no",
            "-L", f"127.0.0.1:{port}:127.0.0.1:{remote_port}"]
    if auth.get("ssh_private_key"):
        args += ["-i", os.path.expanduser(auth["ssh_private_key"])]
    args.append(f"{auth['ssh_user']}@{head_ip}")
    return args, f"http://127.0.0.1:{port}"


def open_tunnel(entry: registry.ClusterEntry) -> registry.ClusterEntry:
    """A background tunnel to the head's spellray server, which listens on the cluster's
    private network only (the cloud's firewall keeps it off the internet)."""
    args, url = ssh_tunnel(entry, launcher_config.SERVER_PORT)
    log = Path(entry.config_path).parent / "tunnel.log"
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True)
    entry.tunnel_pid, entry.server_url = process.pid, url
    _wait_for_server(process, url, log)
    return entry


def _wait_for_server(process: subprocess.Popen[bytes], url: str, log: Path,
                     timeout: float = SERVER_WAIT) -> None:
    """Until the head's server answers through the tunnel: right after `up` it is still
    starting, and the next command would meet a closed port. Any HTTP answer will do."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise SpellrayError(f"the SSH tunnel to the head closed: {said[:300]}")
        try:
            httpx.get(f"{url}/api/info", timeout=5, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SpellrayError(f"the head's spellray server did not answer through the tunnel in "
                        f"{timeout:g} s; see ~/.spellray/server.log on the head")


def close_tunnel(entry: registry.ClusterEntry) -> None:
    from spellray.cluster.local import pid_alive, stop_process_group

    if entry.tunnel_pid and pid_alive(entry.tunnel_pid):
        stop_process_group(entry.tunnel_pid, timeout=5)
    entry.tunnel_pid = None


def use(settings: Settings, name: str) -> str:
    """Point the CLI and SDK at ``name`` (or back at the local cluster); returns its URL."""
    current = registry.selected_cluster(settings.home)
    if name == registry.LOCAL:
        if current and current.config_path:
            close_tunnel(current)
            registry.save(settings.home, current)
        registry.select(settings.home, registry.LOCAL)
        return "the local cluster"
    entry = registry.get(settings.home, name)
    if entry.config_path:
        close_tunnel(entry)
        entry = open_tunnel(entry)
        registry.save(settings.home, entry)
    registry.select(settings.home, name)
    return entry.server_url

"""spell cluster init | machine-type | up | update | down | list | status | dashboard | use |
register: clusters on AWS and GCP through the Ray cluster launcher (Ray imported lazily)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from spellray.cli.output import console, duration
from spellray.errors import InvalidInput

app = typer.Typer(help="Clusters on AWS, GCP or your own hosts (Ray cluster launcher), and "
                       "which one is in use.",
                  no_args_is_help=True)
machine_type_app = typer.Typer(help="Machine types of a cluster: instance type, min/max "
                                    "machines, idle timeout, spot.", no_args_is_help=True)
app.add_typer(machine_type_app, name="machine-type")

ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", "-c", help="Cluster name (default: the one in use).")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Edit this cluster config file instead of a named cluster's.")]


def _settings():
    from spellray.settings import get_settings

    return get_settings()


@app.command()
def init(
    cloud: Annotated[str, typer.Argument(help="aws, gcp or onprem (hosts you have, over SSH)")],
    storage: Annotated[str, typer.Option(
        help="Storage the nodes share: s3://BUCKET/PREFIX or gs://BUCKET/PREFIX; onprem "
             "also a folder every host mounts at the same path.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Cluster name.")] = None,
    region: Annotated[str | None, typer.Option(help="e.g. us-east-1, us-central1")] = None,
    zone: Annotated[str | None, typer.Option(help="Availability zone, e.g. us-central1-a")] = None,
    project: Annotated[str | None, typer.Option(help="GCP project id (gcp only).")] = None,
    machine_type: Annotated[list[str] | None, typer.Option(
        "--machine-type", "-t", help="Machine types from the table to add (default CPU).")] = None,
    spellray_pip: Annotated[str | None, typer.Option(
        help="What the nodes pip-install for spellray (default spellray==<this version>).")] = None,
    path: Annotated[Path | None, typer.Option(help="Write the config here instead.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing config.")] = False,
    head_ip: Annotated[str | None, typer.Option(help="onprem: the head host's address.")] = None,
    worker_ip: Annotated[list[str] | None, typer.Option(
        help="onprem: a worker host, IP or IP=MACHINE-TYPE (default CPU); repeat it.")] = None,
    ssh_user: Annotated[str | None, typer.Option(help="onprem: the user on every host.")] = None,
    ssh_key: Annotated[Path | None, typer.Option(
        help="onprem: the private key that logs in to every host.")] = None,
    setup_command: Annotated[list[str] | None, typer.Option(
        help="onprem: a command run on every host before Ray starts (e.g. pip install "
             "spellray); repeat it. Default: none, the hosts have them.")] = None,
) -> None:
    """Write a complete Ray cluster launcher config (not started yet: spell cluster up)."""
    from spellray.cluster.launcher import init_cluster, init_onprem_cluster

    cluster = name or f"spellray-{cloud}"
    if cloud == "onprem":
        if not (head_ip and ssh_user and ssh_key):
            raise InvalidInput("onprem needs --head-ip, --worker-ip (one or more), --ssh-user "
                               "and --ssh-key")
        written = init_onprem_cluster(_settings(), cluster, head_ip=head_ip,
                                      worker_ips=worker_ip or [], ssh_user=ssh_user,
                                      ssh_key=ssh_key, storage=storage,
                                      setup_commands=setup_command, path=path, force=force)
    else:
        written = init_cluster(_settings(), cloud, cluster, region=region,
                               zone=zone, project=project, storage=storage,
                               machine_types=machine_type,
                               spellray_pip=spellray_pip, path=path, force=force)
    console.print(f"wrote {written}; start it with: spell cluster up {cluster}")


def _edit(cluster: str | None, config: Path | None, change: Callable[[dict], None]) -> None:
    """Load, change, validate and write back (nothing written when anything fails)."""
    from spellray.cluster import launcher_config
    from spellray.cluster.launcher import cluster_config_file

    path = config or cluster_config_file(_settings(), cluster)
    loaded = launcher_config.load_config(path)
    change(loaded)
    launcher_config.save_config(path, loaded)
    console.print(f"updated {path}; apply it with: spell cluster update")


@machine_type_app.command("add")
def machine_type_add(
    name: Annotated[str, typer.Argument(help="A name from the table (CPU, T4, ...) or your own.")],
    instance_type: Annotated[str | None, typer.Option(help="Cloud instance type.")] = None,
    cpus: Annotated[int | None, typer.Option(help="CPUs of one machine.")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs of one machine.")] = None,
    memory: Annotated[float | None, typer.Option(help="Memory of one machine, GB.")] = None,
    price: Annotated[float | None, typer.Option(help="On-demand price per hour, USD.")] = None,
    min_machines: Annotated[int | None, typer.Option(
        "--min", help="Machines kept warm (default 0).")] = None,
    max_machines: Annotated[int | None, typer.Option(
        "--max", help="Autoscaling bound (default 2).")] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        help="Minutes idle before a machine above --min goes away (default 10).")] = None,
    spot: Annotated[bool, typer.Option(help="Spot (AWS) / preemptible (GCP) machines.")] = False,
    default_auto_resume: Annotated[bool, typer.Option(
        "--default-auto-resume", help="Runs on it resume when interrupted unless they say "
        "--disable-auto-resume.")] = False,
    host: Annotated[list[str] | None, typer.Option(
        "--host", help="onprem: a host of this type (repeat it); a new host joins the "
                       "cluster, a listed one changes type.")] = None,
    cluster: ClusterOpt = None, config: ConfigOpt = None,
) -> None:
    """Add a machine type (a node type of the cluster; on-prem, the hosts given it)."""
    from spellray.cluster import launcher_config as lc
    from spellray.cluster import onprem

    cloud_only = {"--instance-type": instance_type, "--cpus": cpus, "--memory": memory,
                  "--min": min_machines, "--max": max_machines,
                  "--idle-timeout": idle_timeout, "--spot": spot or None,
                  "--default-auto-resume": default_auto_resume or None}

    def change(loaded: dict) -> None:
        if onprem.is_onprem(loaded):
            given = [flag for flag, value in cloud_only.items() if value is not None]
            if given:
                raise InvalidInput(f"{', '.join(given)}: an on-prem machine type is hosts you "
                                   "have; it takes only --host, --gpus and --price")
            onprem.set_hosts_type(loaded, name, host or [], gpus=gpus, price=price)
            return
        if host:
            raise InvalidInput("--host is for on-prem clusters (spell cluster init onprem); "
                               "a cloud's machines come from --instance-type")
        lc.add_machine_type(loaded, lc.machine_type_from_table(
            lc.node_types_cloud(loaded), name, instance_type, cpus=cpus, gpus=gpus,
            memory_gb=memory, price_per_hour=price, min_machines=min_machines,
            max_machines=max_machines, idle_timeout_minutes=idle_timeout, spot=spot,
            default_auto_resume=default_auto_resume))

    _edit(cluster, config, change)


@machine_type_app.command("scale")
def machine_type_scale(
    name: str,
    min_machines: Annotated[int | None, typer.Option("--min")] = None,
    max_machines: Annotated[int | None, typer.Option("--max")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Minutes.")] = None,
    cluster: ClusterOpt = None, config: ConfigOpt = None,
) -> None:
    """Change a machine type's min/max machines or idle timeout."""
    from spellray.cluster import onprem
    from spellray.cluster.launcher_config import scale_machine_type

    def change(loaded: dict) -> None:
        if onprem.is_onprem(loaded):
            onprem.refuse_node_type_edit(loaded, name, "scale")
        scale_machine_type(loaded, name, min_machines, max_machines, idle_timeout)

    _edit(cluster, config, change)


@machine_type_app.command("delete")
def machine_type_delete(name: str, cluster: ClusterOpt = None, config: ConfigOpt = None) -> None:
    """Remove a machine type."""
    from spellray.cluster import onprem
    from spellray.cluster.launcher_config import delete_machine_type

    def change(loaded: dict) -> None:
        if onprem.is_onprem(loaded):
            onprem.refuse_node_type_edit(loaded, name, "delete")
        delete_machine_type(loaded, name)

    _edit(cluster, config, change)


@machine_type_app.command("list")
def machine_type_list(cluster: ClusterOpt = None, config: ConfigOpt = None) -> None:
    """The cluster config's machine types."""
    from rich.table import Table

    from spellray.cluster import launcher_config
    from spellray.cluster.launcher import cluster_config_file

    path = config or cluster_config_file(_settings(), cluster)
    table = Table("NAME", "INSTANCE", "CPUS", "GPUS", "MIN", "MAX", "IDLE", "SPOT", "RESUME",
                  "$/HOUR",
                  box=None)
    for t in launcher_config.list_machine_types(launcher_config.load_config(path)):
        table.add_row(t.name, t.instance_type or "-",
                      "-" if t.machine_cpus is None else str(t.machine_cpus), f"{t.num_gpus:g}",
                      str(t.min_machines), str(t.max_machines),
                      "-" if t.idle_timeout_minutes is None else f"{t.idle_timeout_minutes:g}m",
                      "yes" if t.spot else "no",
                      "yes" if t.default_auto_resume else "no",
                      "-" if t.price_per_hour is None else f"{t.price_per_hour:.3f}")
    console.print(table)


@app.command()
def up(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Start the cluster (Ray cluster launcher), then switch to it."""
    from spellray.cluster import launcher

    settings = _settings()
    head = launcher.up(settings, name)
    console.print(f"cluster up, head node {head}")
    from spellray.cluster.launcher_config import load_config

    target = load_config(launcher.cluster_config_file(settings, name))["cluster_name"]
    console.print(f"now using it: {launcher.use(settings, target)}")


@app.command()
def update(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Apply an edited config (machine types, bounds) without restarting Ray."""
    from spellray.cluster import launcher

    head, hosts = launcher.update(_settings(), name)
    console.print(f"cluster updated, head node {head}")
    for line in hosts:
        console.print(f"  {line}", highlight=False)


@app.command()
def down(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Terminate every machine of the cluster (on-prem: stop Ray and the server on every
    host); its config stays."""
    from spellray.cluster import launcher

    settings = _settings()
    for problem in launcher.down(settings, name):
        console.print(f"could not stop Ray on {problem}")
    launcher.use(settings, "local")
    console.print("cluster down; using the local cluster")


@app.command("list")
def list_clusters() -> None:
    """Known clusters; * marks the one in use."""
    from spellray.cluster import registry

    current, entries = registry.list_clusters(_settings().home)
    console.print(f"{'*' if current == registry.LOCAL else ' '} local")
    for entry in entries:
        where = entry.server_url or "(not connected)"
        console.print(f"{'*' if current == entry.name else ' '} {entry.name}  {where}")


@app.command()
def use(name: str) -> None:
    """Send later commands to cluster NAME (`local`: the embedded one)."""
    from spellray.cluster.launcher import use as use_cluster

    console.print(f"using {name}: {use_cluster(_settings(), name)}")


@app.command()
def register(
    name: str,
    url: Annotated[str, typer.Option(help="The cluster's spellray server URL.")],
    token: Annotated[str, typer.Option(help="Its admin token.", envvar="SPELLRAY_CLUSTER_TOKEN")],
) -> None:
    """Add a cluster whose spellray server you reach already (a VPN, your own tunnel)."""
    from spellray.cluster import registry

    if not url.startswith(("http://", "https://")):
        from spellray.errors import InvalidInput

        raise InvalidInput(f"--url {url!r} is not an http(s) URL; e.g. http://10.0.0.5:8300")
    registry.save(_settings().home, registry.ClusterEntry(name=name, server_url=url, token=token))
    console.print(f"registered {name}; switch to it with: spell cluster use {name}")


def short_node_id(node_id: str) -> str:
    """Both ends: Ray's ids are random, but fake-cluster ids differ only at the end."""
    return f"{node_id[:6]}..{node_id[-6:]}"


@app.command()
def status() -> None:
    """Nodes per machine type, the runs on them, and the cost so far."""
    from rich.table import Table

    from spellray.client import from_environment

    report = from_environment().cluster.status()
    alive = [n for n in report.nodes if n.alive]
    types = Table("MACHINE TYPE", "NODES", "MIN", "MAX", "$/HOUR", box=None)
    for t in report.machine_types:
        count = sum(1 for n in alive if n.machine_type == t.name)
        types.add_row(t.name, str(count), str(t.min_machines), str(t.max_machines) if
                      t.instance_type else "-",
                      "-" if t.price_per_hour is None else f"{t.price_per_hour:.3f}")
    console.print(types)
    nodes = Table("NODE", "MACHINE TYPE", "STATE", "IP", "UP", "RUNS", "COST", box=None)
    for n in report.nodes:
        state = "alive" if n.alive else "ended"
        nodes.add_row(short_node_id(n.node_id), n.machine_type, state, n.ip,
                      duration(n.hours * 3600), ",".join(map(str, n.runs)) or "-",
                      "-" if n.cost is None else f"${n.cost:.4f}")
    console.print(nodes)
    console.print(f"cost so far: ${report.cost:.4f} (instance hours x the machine type's price)")


@app.command()
def dashboard(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Open Ray's dashboard: the local one's address, or an SSH tunnel to a cluster's
    (bound to 127.0.0.1 on its head) until Ctrl-C."""
    import subprocess

    from spellray.cluster import launcher, registry

    settings = _settings()
    entry = registry.selected_cluster(settings.home) if name is None else (
        None if name == registry.LOCAL else registry.get(settings.home, name))
    if entry is None:
        console.print(f"Ray dashboard: {settings.ray_address}")
        return
    launcher.cluster_config_file(settings, entry.name)  # a clear error for URL-only ones
    args, url = launcher.ssh_tunnel(entry, 8265)
    console.print(f"Ray dashboard: {url} (Ctrl-C closes the tunnel)")
    subprocess.run(args, check=False)

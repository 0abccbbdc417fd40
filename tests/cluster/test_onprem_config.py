"""`spell cluster init onprem` configs against Ray's own checks (schema, and the launcher's
preparation, which for the local provider needs no network), its worker start command run
by a real bash, and bad input through the real CLI (one line, non-zero, nothing written)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.commands import _bootstrap_config
from ray.autoscaler._private.local.config import LOCAL_CLUSTER_NODE_TYPE

from spellray.cluster import launcher_config as lc
from spellray.cluster import onprem
from tests.cluster.test_cluster_cli import cli, ok  # noqa: F401  (the fixture)
from tests.cluster.test_launcher_config import ray_schema
from tests.helpers import Spell


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519"
    path.write_text("not read before `up`\n")
    return path


def generated(tmp: Path, key: Path) -> dict[str, Any]:
    return onprem.init_config("lab", head_ip="10.0.0.2", worker_ips=["10.0.0.3",
                                                                     "10.0.0.4=T4"],
                              ssh_user="ops", ssh_key=key, storage_uri="/mnt/nfs/spell",
                              spellray_token="secret", ray_token_path=tmp / "ray_auth_token")


def test_onprem_config_passes_rays_schema_and_the_launchers_preparation(
        tmp_path: Path, key: Path) -> None:
    config = generated(tmp_path, key)
    jsonschema.validate(config, ray_schema())
    lc.validate(config)
    prepared = _bootstrap_config(config, no_config_cache=True)
    # Ray's local provider: one node type, kept at exactly the listed hosts.
    node_type = prepared["available_node_types"][LOCAL_CLUSTER_NODE_TYPE]
    assert (node_type["min_workers"], node_type["max_workers"]) == (2, 2)
    assert {k: prepared["provider"][k] for k in ("type", "head_ip", "worker_ips")} == {
        "type": "local", "head_ip": "10.0.0.2", "worker_ips": ["10.0.0.3", "10.0.0.4"]}
    assert prepared["auth"] == {"ssh_user": "ops", "ssh_private_key": str(key)}
    head = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "--dashboard-host=127.0.0.1" in head
    assert "--node-ip-address=10.0.0.2" in head and "RAY_enable_autoscaler_v2=0" in head
    assert "--advertise-url http://10.0.0.2:8300" in head
    assert "SPELLRAY_STORAGE_URI=/mnt/nfs/spell" in head
    types = {t.name: t for t in lc.list_machine_types(config)}
    assert set(types) == {"CPU", "T4"} and types["T4"].num_gpus == 1
    assert types["CPU"].resources == {"spellray-machine:CPU": 1}


@pytest.mark.parametrize(("addresses", "expected"), [
    ("10.0.0.3", "--node-ip-address=10.0.0.3 --resources={\"spellray-machine:CPU\": 1}"),
    ("172.17.0.9 10.0.0.4",
     "--node-ip-address=10.0.0.4 --resources={\"spellray-machine:T4\": 1}"),
    ("10.0.0.33", "not one of the cluster's --worker-ip addresses"),  # no prefix match
])
def test_each_worker_starts_ray_with_its_own_address_and_machine_type(
        tmp_path: Path, key: Path, addresses: str, expected: str) -> None:
    """The worker command in a real bash, with `hostname -I` and `ray` as stand-ins that
    print what they were given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hostname").write_text(f"#!/bin/sh\necho '{addresses} '\n")
    (bin_dir / "ray").write_text("#!/bin/sh\n[ \"$1\" = start ] && echo \"$@\"\ntrue\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    command = generated(tmp_path, key)["worker_start_ray_commands"][1]
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RAY_HEAD_IP": "10.0.0.2"})
    if "not one of" in expected:
        assert done.returncode != 0 and expected in done.stderr and "start" not in done.stdout
    else:
        assert expected in done.stdout and "--address=10.0.0.2:6379" in done.stdout


def test_init_onprem_through_the_cli(cli: Spell, key: Path) -> None:  # noqa: F811
    ok(cli("cluster", "init", "onprem", "--name", "lab", "--storage", "/mnt/nfs/spell",
           "--head-ip", "10.0.0.2", "--worker-ip", "10.0.0.3", "--worker-ip", "10.0.0.4=T4",
           "--ssh-user", "ops", "--ssh-key", str(key)))
    folder = cli.home / "clusters" / "lab"
    config = yaml.safe_load((folder / "cluster.yaml").read_text())
    assert config["provider"]["worker_ips"] == ["10.0.0.3", "10.0.0.4"]
    assert (folder / "cluster.yaml").stat().st_mode & 0o777 == 0o600
    listed = ok(cli("cluster", "machine-type", "list", "-c", "lab"))
    assert "CPU" in listed and "T4" in listed

    # A machine type is the hosts given it: a new host joins, a listed one changes type.
    said = ok(cli("cluster", "machine-type", "add", "big", "--host", "10.0.0.3", "--host",
                  "10.0.0.5", "--price", "0.5", "-c", "lab"))
    assert "apply it with: spell cluster update" in said
    config = yaml.safe_load((folder / "cluster.yaml").read_text())
    assert config["provider"]["worker_ips"] == ["10.0.0.3", "10.0.0.4", "10.0.0.5"]
    assert config["max_workers"] == 3
    lc.validate(config)
    types = json.loads((folder / "machine_types.json").read_text())
    assert {t["name"]: t["max_machines"] for t in types} == {"big": 2, "T4": 1}
    rows = {line.split()[0]: line.split() for line in
            ok(cli("cluster", "machine-type", "list", "-c", "lab")).splitlines()[1:]}
    assert set(rows) == {"big", "T4"} and rows["big"][-1] == "0.500"

    # What an on-prem type cannot take is refused in one line, and the config is kept.
    before = (folder / "cluster.yaml").read_text()
    for args, message in [
        (["add", "big"], "give them with --host IP"),
        (["add", "big", "--host", "10.0.0.2"], "--host 10.0.0.2 is the head"),
        (["add", "big", "--host", "10.0.0.9", "--host", "10.0.0.9"], "given twice"),
        (["add", "big", "--host", "box-7"], "--host 'box-7' is not an IP address"),
        (["add", "head", "--host", "10.0.0.9"], "must be letters, digits"),
        (["add", "big", "--host", "10.0.0.9", "--min", "1", "--spot"],
         "--min, --spot: an on-prem machine type is hosts you have"),
        (["scale", "big", "--max", "5"], "one machine per host (big: 10.0.0.3, 10.0.0.5)"),
        (["delete", "T4"], "machine type 'T4' is the type of 10.0.0.4; give them another"),
        (["delete", "V100"], "no machine type 'V100' in this cluster; it has: T4, big"),
    ]:
        refused = cli("cluster", "machine-type", *args, "-c", "lab")
        assert refused.returncode != 0 and message in refused.stderr, (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert (folder / "cluster.yaml").read_text() == before


def test_retyping_every_host_of_a_type_removes_it_and_keeps_its_gpus_setting(
        tmp_path: Path, key: Path) -> None:
    config = generated(tmp_path, key)
    onprem.set_hosts_type(config, "T4", ["10.0.0.3"])
    assert onprem.hosts_table(config) == {"10.0.0.3": "T4", "10.0.0.4": "T4"}
    types = {t.name: t for t in lc.list_machine_types(config)}
    assert set(types) == {"T4"} and (types["T4"].min_machines, types["T4"].max_machines) \
        == (2, 2) and types["T4"].num_gpus == 1
    onprem.set_hosts_type(config, "T4", ["10.0.0.4"], gpus=2)
    onprem.set_hosts_type(config, "CPU", ["10.0.0.6"])  # a new host: T4 keeps its 2 GPUs
    types = {t.name: t for t in lc.list_machine_types(config)}
    assert types["T4"].num_gpus == 2 and types["CPU"].num_gpus == 0
    # The workers' start command follows: each host starts Ray as its new type.
    command = config["worker_start_ray_commands"][1]
    assert "*' 10.0.0.3 '*) NODE_IP=10.0.0.3 RESOURCES='{\"spellray-machine:T4\": 1}'" in command
    assert "*' 10.0.0.6 '*) NODE_IP=10.0.0.6 RESOURCES='{\"spellray-machine:CPU\": 1}'" \
        in command


GOOD = ["--head-ip", "10.0.0.2", "--worker-ip", "10.0.0.3", "--ssh-user", "ops"]


@pytest.mark.parametrize(("args", "message"), [
    (["--head-ip", "10.0.0.256", "--worker-ip", "10.0.0.3", "--ssh-user", "ops"],
     "--head-ip '10.0.0.256' is not an IP address"),
    (["--head-ip", "10.0.0.2", "--worker-ip", "head-box", "--ssh-user", "ops"],
     "--worker-ip 'head-box' is not an IP address"),
    ([*GOOD, "--worker-ip", "10.0.0.3=T4"], "--worker-ip 10.0.0.3 is given twice"),
    (["--head-ip", "10.0.0.2", "--worker-ip", "10.0.0.2", "--ssh-user", "ops"],
     "is both --head-ip and a --worker-ip"),
    (["--head-ip", "10.0.0.2", "--ssh-user", "ops"], "at least one --worker-ip"),
    (["--head-ip", "10.0.0.2", "--worker-ip", "10.0.0.3"], "onprem needs --head-ip"),
    ([*GOOD, "--worker-ip", "10.0.0.5=a b"], "must be letters, digits"),
    ([*GOOD, "--ssh-key", "/nonexistent/key"], "--ssh-key /nonexistent/key: no such file"),
    ([*GOOD, "--storage", "relative/dir"], "give a folder every host mounts"),
])
def test_bad_onprem_input_is_one_line_and_writes_nothing(
        cli: Spell, key: Path, args: list[str], message: str) -> None:  # noqa: F811
    if "--ssh-key" not in args:
        args = [*args, "--ssh-key", str(key)]
    if "--storage" not in args:
        args = [*args, "--storage", "/mnt/nfs/spell"]
    result = cli("cluster", "init", "onprem", "--name", "lab", *args)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
        result.stderr
    assert not (cli.home / "clusters" / "lab").exists()


def test_up_without_the_ssh_key_is_one_line(cli: Spell, key: Path) -> None:  # noqa: F811
    ok(cli("cluster", "init", "onprem", "--name", "lab", "--storage", "/mnt/nfs/spell",
           *GOOD, "--ssh-key", str(key)))
    key.unlink()  # moved, or the laptop changed
    result = cli("cluster", "up", "lab")
    assert result.returncode != 0
    assert f"the cluster's SSH key {key} is missing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_update_of_a_cluster_that_is_not_up_starts_nothing(cli: Spell, key: Path) -> None:  # noqa: F811
    """Ray's launcher would launch a whole new cluster: `update` says to use `up`."""
    name = f"never-up-{os.getpid()}"  # Ray's local provider keeps state in /tmp/ray by name
    ok(cli("cluster", "init", "onprem", "--name", name, "--storage", "/mnt/nfs/spell",
           *GOOD, "--ssh-key", str(key)))
    try:
        result = cli("cluster", "update", name)
    finally:
        for suffix in ("state", "lock"):
            Path(f"/tmp/ray/cluster-{name}.{suffix}").unlink(missing_ok=True)
    assert result.returncode != 0
    # The last line: Ray's local provider logs its state file as it reads it.
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cluster {name} is not up, so there is nothing to update; start it with "
        f"spell cluster up {name}"), result.stderr
    assert "Launching a new cluster" not in result.stdout + result.stderr

"""`spell cluster` through the real CLI: machine-type round trips on the YAML, bad input
(one line, non-zero exit, the file unchanged), the no-credentials edge, and `use`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import Spell


@pytest.fixture
def cli(tmp_path: Path) -> Spell:
    """A CLI with its own home and no cloud credentials at all."""
    home = tmp_path / "home"
    home.mkdir()
    no_cloud = {k: "" for k in os.environ if k.startswith(("AWS_", "GOOGLE_"))}
    no_cloud.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                    AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    return Spell(home=home, ray_address="http://127.0.0.1:1", extra_env=no_cloud)


def config_of(cli: Spell, name: str = "spellray-aws") -> Path:
    return cli.home / "clusters" / name / "cluster.yaml"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_machine_type_round_trip(cli: Spell) -> None:
    ok(cli("cluster", "init", "aws", "--region", "eu-west-1", "--storage", "s3://b/p"))
    path = config_of(cli)
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds the server's token
    ok(cli("cluster", "machine-type", "add", "T4", "--min", "1", "--max", "3", "--spot",
           "--default-auto-resume", "--idle-timeout", "5"))
    ok(cli("cluster", "machine-type", "add", "custom", "--instance-type", "c6i.large",
           "--cpus", "2", "--price", "0.085"))
    listing = ok(cli("cluster", "machine-type", "list"))
    assert "g4dn.xlarge" in listing and "c6i.large" in listing and "0.085" in listing
    t4 = yaml.safe_load(path.read_text())["available_node_types"]["T4"]
    assert (t4["min_workers"], t4["max_workers"], t4["idle_timeout_s"]) == (1, 3, 300)
    assert t4["node_config"]["InstanceMarketOptions"] == {"MarketType": "spot"}

    ok(cli("cluster", "machine-type", "scale", "T4", "--max", "5", "--min", "0"))
    config = yaml.safe_load(path.read_text())
    assert config["available_node_types"]["T4"]["max_workers"] == 5
    assert config["max_workers"] == 2 + 5 + 2  # CPU, T4, custom

    ok(cli("cluster", "machine-type", "delete", "custom"))
    config = yaml.safe_load(path.read_text())
    assert "custom" not in config["available_node_types"]
    assert "custom" not in config["metadata"]["spellray"]["machine_types"]
    # The head's server gets the same machine types (mounted from this file).
    mounted = (path.parent / "machine_types.json").read_text()
    assert '"T4"' in mounted and '"custom"' not in mounted
    served = {t["name"]: t for t in json.loads(mounted)}
    assert served["T4"]["spot"] and served["T4"]["default_auto_resume"]  # the server's default


@pytest.mark.parametrize(("args", "message"), [
    (["machine-type", "add", "CPU"], "already exists"),
    (["machine-type", "add", "NOPE"], "unknown machine type 'NOPE' for aws"),
    (["machine-type", "add", "V100", "--min", "3", "--max", "1"], "--min 3 is more than --max 1"),
    (["machine-type", "add", "V100", "--host", "10.0.0.3"], "--host is for on-prem clusters"),
    (["machine-type", "scale", "CPU", "--min", "9"], "--min 9 is more than --max 2"),
    (["machine-type", "scale", "NOPE", "--max", "1"], "no machine type 'NOPE'"),
    (["machine-type", "delete", "head"], "no machine type 'head'"),
    (["machine-type", "list", "--cluster", "nope"], "no cluster named 'nope'"),
    (["init", "azure", "--storage", "s3://b/p"], "unknown cloud 'azure'"),
    (["init", "gcp", "--storage", "gs://b/p"], "GCP needs a project"),
    (["init", "aws", "--storage", "s3://b/p"], "exists"),
    (["init", "aws", "--name", "x", "--storage", "/tmp/here"], "nodes share object storage"),
    (["up"], "no AWS credentials"),
    (["use", "nope"], "no cluster named 'nope'"),
])
def test_bad_input_is_one_line_and_changes_nothing(cli: Spell, args: list[str],
                                                   message: str) -> None:
    ok(cli("cluster", "init", "aws", "--storage", "s3://b/p"))
    before = config_of(cli).read_bytes()
    result = cli("cluster", *args)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
        result.stderr
    assert config_of(cli).read_bytes() == before


def test_use_switches_between_a_registered_cluster_and_local(cli: Spell, spell: Spell) -> None:
    # `spell` is a real server on the session's Ray head, standing in for a cluster's.
    ok(cli("cluster", "register", "team", "--url", spell.url, "--token", spell.token))
    assert "* local" in ok(cli("cluster", "list"))
    ok(cli("cluster", "use", "team"))
    assert "* team" in ok(cli("cluster", "list"))
    status = ok(cli("cluster", "status"))  # answered by the team's server
    assert "head" in status and "cost so far" in status
    assert ok(cli("ps")) is not None
    assert not (cli.home / "server.json").exists()  # no local server was started
    # SPELLRAY_SERVER_URL still wins over the selection.
    pinned = Spell(home=cli.home, ray_address=cli.ray_address,
                   extra_env={**cli.extra_env, "SPELLRAY_SERVER_URL": "http://127.0.0.1:1"})
    refused = pinned("ps")
    assert refused.returncode != 0 and "127.0.0.1:1" in refused.stderr
    ok(cli("cluster", "use", "local"))
    assert "* local" in ok(cli("cluster", "list"))
    down = cli("server", "status")
    assert "server  down" in down.stdout

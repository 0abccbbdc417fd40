"""Generated AWS and GCP cluster configs against Ray's own checks, with no cloud call.

- Schema: ray/autoscaler/ray-schema.json from the installed ray, with jsonschema.
- The launcher's own config preparation: ray.autoscaler._private.commands._bootstrap_config
  (prepare_config: defaults, merged setup commands, min/max per node type; the provider's
  resource fill-out; validate_config; the provider's bootstrap_config).
  AWS: the whole of it, Ray's AWS provider included, against moto's in-process AWS
  (EC2, IAM): what is cut is the network under boto3. Ray's two 15 s waits for IAM
  propagation are skipped (moto has none) and HOME is a temporary folder (Ray writes the
  SSH key it creates under ~/.ssh).
  GCP: Ray's GCP provider cannot be imported without google-api-python-client (not a
  dependency), so the provider class is replaced by one whose bootstrap_config records the
  config it gets: everything before the cloud calls runs; Google's API is what is cut.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.commands import _bootstrap_config
from ray.autoscaler.node_provider import NodeProvider

from spellray.cluster import launcher_config as lc
from spellray.cluster import node_health


def generated(cloud: str, tmp: Path) -> dict[str, Any]:
    return lc.init_config(cloud, f"test-{cloud}", region="us-west-2" if cloud == "aws" else None,
                          project="my-project" if cloud == "gcp" else None,
                          storage_uri="s3://bucket/spell" if cloud == "aws" else "gs://b/s",
                          spellray_pip="spellray==0.1.0", spellray_token="secret",
                          ray_token_path=tmp / "ray_auth_token",
                          machine_types=["CPU", "CPU-big", "T4"])


def ray_schema() -> dict[str, Any]:
    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_generated_config_matches_rays_schema(cloud: str, tmp_path: Path) -> None:
    config = generated(cloud, tmp_path)
    jsonschema.validate(config, ray_schema())
    node_types = config["available_node_types"]
    assert set(node_types) == {"head", "CPU", "CPU-big", "T4"}
    assert node_types["T4"]["resources"]["GPU"] == 1
    assert node_types["CPU-big"]["resources"][lc.machine_resource("CPU-big")] == 1
    assert "spellray-machine:CPU" not in node_types["head"]["resources"]
    head = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "--dashboard-host=127.0.0.1" in head
    assert "python -m spellray.server" in head and "SPELLRAY_STORAGE_URI=" in head
    assert "RAY_AUTH_MODE=token" in " ".join(config["worker_start_ray_commands"])
    # Every node's Ray loads spellray's environment plugin (runs' --pip environments).
    plugin = "RAY_RUNTIME_ENV_PLUGINS='[{\"class\": \"spellray.cluster.venv_plugin.VenvPlugin\"}]'"
    assert plugin in head and plugin in " ".join(config["worker_start_ray_commands"])
    # The head's GCS declares a lost node dead as fast as every spellray head's does.
    [start] = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert node_health.shell_assignments() in start.split(";")[0], start
    assert config["max_workers"] == 6  # 3 machine types, max 2 each


def test_the_template_for_machines_one_has_sets_the_same_node_health_check() -> None:
    template = (lc.CONFIG_DIR / "local.yaml").read_text()
    [head] = yaml.safe_load(template)["head_start_ray_commands"][1:]
    assert all(f"{k}={v}" in head.split() for k, v in node_health.HEAD_ENV.items()), head


def test_aws_config_passes_the_launchers_preparation(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws
    from ray.autoscaler._private.aws import config as aws_config

    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # AmazonEC2FullAccess
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(aws_config, "time", SimpleNamespace(sleep=lambda _: None))
    config = generated("aws", tmp_path)
    with mock_aws():
        resolved = _bootstrap_config(copy.deepcopy(config), no_config_cache=True)
    t4 = resolved["available_node_types"]["T4"]
    assert t4["node_config"]["InstanceType"] == "g4dn.xlarge"
    assert t4["node_config"]["ImageId"].startswith("ami-")  # Ray's default AMI for the region
    assert t4["resources"][lc.machine_resource("T4")] == 1
    assert t4["min_workers"] == 0 and t4["max_workers"] == 2
    assert resolved["auth"]["ssh_private_key"].startswith(str(tmp_path))
    # merge_setup_commands: our pip install runs on the head and the workers.
    assert resolved["head_setup_commands"][0] == config["setup_commands"][0]


def test_gcp_config_passes_the_launchers_preparation(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.autoscaler._private import providers

    seen: list[dict[str, Any]] = []

    class GoogleApiCut(NodeProvider):
        @staticmethod
        def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
            seen.append(cluster_config)
            return cluster_config

    monkeypatch.setitem(providers._NODE_PROVIDERS, "gcp", lambda _: GoogleApiCut)
    config = generated("gcp", tmp_path)
    resolved = _bootstrap_config(copy.deepcopy(config), no_config_cache=True)
    assert seen, "the launcher never reached the provider's bootstrap"
    t4 = resolved["available_node_types"]["T4"]["node_config"]
    assert t4["guestAccelerators"] == [{"acceleratorType": "nvidia-tesla-t4",
                                        "acceleratorCount": 1}]
    assert t4["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert resolved["provider"]["project_id"] == "my-project"


def test_spot_and_idle_timeout_land_where_ray_reads_them(tmp_path: Path) -> None:
    for cloud in ("aws", "gcp"):
        config = generated(cloud, tmp_path)
        lc.add_machine_type(config, lc.machine_type_from_table(
            cloud, "CPU-huge", spot=True, idle_timeout_minutes=3, min_machines=1,
            max_machines=4))
        lc.scale_machine_type(config, "CPU", idle_timeout_minutes=2)
        node = config["available_node_types"]["CPU-huge"]
        spot = (node["node_config"]["InstanceMarketOptions"] == {"MarketType": "spot"}
                if cloud == "aws" else node["node_config"]["scheduling"]["preemptible"])
        assert spot and node["idle_timeout_s"] == 180
        assert (node["min_workers"], node["max_workers"]) == (1, 4)
        # Autoscaler v1 reads only the cluster-wide value: the smallest one.
        assert config["idle_timeout_minutes"] == 2
        jsonschema.validate(config, ray_schema())


def test_the_heads_server_keeps_users_keys_in_authorized_keys_and_sshd_is_hardened(
        tmp_path: Path) -> None:
    """`spell keys` on a cluster: the head's server writes the users' keys into the head's
    authorized_keys (docs/keys.md), and its sshd refuses remote Unix-socket forwards, which
    a key's permitlisten cannot (the head setup's drop-in, checked by a real shell)."""
    for cloud in ("aws", "gcp"):
        config = generated(cloud, tmp_path)
        server = next(c for c in config["head_start_ray_commands"] if "nohup" in c)
        assert "SPELLRAY_AUTHORIZED_KEYS_FILE=$HOME/.ssh/authorized_keys" in server
        assert lc.SSHD_HARDENING in config["head_setup_commands"]
    # Where sudo cannot act (no sudo, or a password needed), the setup goes on and says so.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sudo").chmod(0o755)
    done = subprocess.run(["bash", "-c", lc.SSHD_HARDENING], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0
    assert "could not set AllowStreamLocalForwarding local" in done.stderr

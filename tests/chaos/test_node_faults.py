"""Chaos: a worker node of the fake multi-node cluster killed while a run is on it. The run
must end `interrupted` (the machine went, not the run's fault) with a reason naming the node and
its machine type, never stay stuck.

The "machine" is a raylet the fake provider started; killing it (SIGKILL) is the node dying.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spellray.cluster.launcher_config import machine_resource
from spellray.schemas import MachineType
from spellray.testing.fake_cluster import FakeCluster
from tests.chaos.fake_cluster_spell import spell_on_fake_cluster
from tests.helpers import Spell

pytestmark = pytest.mark.campaign

BIG = "CPU-big"


def _cpu_big() -> MachineType:
    # One warm machine (min 1): the run starts on it without waiting for the autoscaler.
    return MachineType(name=BIG, num_cpus=1, resources={machine_resource(BIG): 1},
                       machine_cpus=2, price_per_hour=0.384, min_machines=1, max_machines=1,
                       idle_timeout_minutes=1)


@pytest.fixture
def fake_spell(tmp_path: Path) -> Iterator[tuple[FakeCluster, Spell]]:
    with spell_on_fake_cluster(tmp_path, _cpu_big()) as both:
        yield both


def test_run_on_a_killed_node_ends_naming_the_node(fake_spell: tuple[FakeCluster, Spell],
                                                   project: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    cluster, spell = fake_spell
    run_id = spell.submit_background("sleep 600", "-t", BIG, cwd=project)
    info = spell.wait_status(run_id, "running", timeout=240)
    node_id = JobSubmissionClient(cluster.dashboard_address).get_job_info(
        info["ray_submission_id"]).driver_node_id
    found = subprocess.run(["pgrep", "-f", f"raylet.*--node_id={node_id}"],
                           capture_output=True, text=True).stdout.split()
    assert len(found) == 1, found
    killed_at = time.time()
    os.kill(int(found[0]), signal.SIGKILL)
    ended = spell.wait_status(run_id, "failed", "interrupted", "complete", timeout=240)
    print(f"\nworker node killed: run {run_id} {ended['status']} "
          f"{_seconds(ended) - killed_at:.1f} s after the kill: {ended['status_reason']}")
    assert ended["status"] == "interrupted", ended
    assert ended["status_reason"].startswith(
        f"the {BIG} machine it ran on (node {node_id}) was lost"), ended
    assert "\n" not in ended["status_reason"], ended  # one line, as `spell ps` shows it
    # Without auto-resume (the type's default is off): no run follows it.
    assert ended["resumed_as"] is None and not ended["auto_resume"], ended
    assert [r["id"] for r in spell.api("GET", "/api/runs").json()["runs"]] == [run_id]


def _seconds(info: dict) -> float:
    from datetime import datetime, timezone

    when = datetime.fromisoformat(info["ended_at"])
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()

"""Autoscaling on Ray's fake multi-node provider: the real autoscaler, "machines" that are
extra raylets on this machine, and the real spellray server and CLI pointed at that cluster.

One fake cluster for the module (not the session head): a head with 2 CPUs and one machine
type, CPU-big (1 machine at most, idle timeout 0.1 min). The autoscaler here is v1, whose
idle timeout is the cluster-wide idle_timeout_minutes (see launcher_config._sync_totals).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spellray.cli.cluster import short_node_id
from spellray.cluster.launcher_config import machine_resource
from spellray.schemas import MachineType
from spellray.testing.fake_cluster import FakeCluster, start_fake_cluster
from tests.helpers import Spell, wait_for

IDLE_MINUTES = 0.1
BIG = "CPU-big"


def cpu_big(min_machines: int) -> MachineType:
    return MachineType(name=BIG, num_cpus=1, resources={machine_resource(BIG): 1},
                       machine_cpus=2, price_per_hour=0.384, min_machines=min_machines,
                       max_machines=1, idle_timeout_minutes=IDLE_MINUTES)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    cluster = start_fake_cluster(tmp_path_factory.mktemp("fake-cluster"), [cpu_big(0)],
                                 idle_timeout_minutes=IDLE_MINUTES)
    try:
        yield cluster
    finally:
        cluster.stop()  # the head's process group: its worker raylets go with it


@pytest.fixture(scope="module")
def spell_on_fake(tmp_path_factory: pytest.TempPathFactory, fake: FakeCluster) -> Iterator[Spell]:
    home = tmp_path_factory.mktemp("spell-fake") / "home"
    home.mkdir()
    # What `spell cluster init` mounts on a cloud head: the server's machine types.
    (home / "machine_types.json").write_text(
        "[" + cpu_big(0).model_dump_json(exclude_none=True) + "]")
    installation = Spell(home=home, ray_address=fake.dashboard_address)
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    yield installation
    installation("server", "stop")


def alive_nodes(fake: FakeCluster, machine_type: str) -> list:
    from ray.util.state import list_nodes

    return [n for n in list_nodes(address=fake.dashboard_address, detail=True)
            if n.state == "ALIVE" and machine_resource(machine_type) in n.resources_total]


def driver_node(fake: FakeCluster, submission_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(fake.dashboard_address).get_job_info(submission_id).driver_node_id


def hold_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Check ``predicate`` on every poll for ``seconds``: a state that must last."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.5)


def test_run_starts_a_machine_that_goes_away_when_idle(fake: FakeCluster,
                                                       spell_on_fake: Spell,
                                                       project: Path) -> None:
    assert alive_nodes(fake, BIG) == []
    run_id = spell_on_fake.submit_background("python train.py", "-t", BIG, cwd=project)
    # No machine of the type yet: the run waits in spellray's queue, not as a Ray job, and
    # the queue shows it to the autoscaler, which starts a machine for it.
    queued = spell_on_fake.run_info(run_id)
    assert queued["ray_submission_id"] is None, queued
    assert queued["waiting"] == f"waiting for a {BIG} machine"
    info = spell_on_fake.wait_status(run_id, "complete", timeout=180)
    # The run ran on the machine the autoscaler started for it.
    node_id = driver_node(fake, info["ray_submission_id"])
    big = alive_nodes(fake, BIG)
    assert [n.node_id for n in big] == [node_id] or not big  # it may already be gone
    status = spell_on_fake("cluster", "status")
    assert status.returncode == 0, status.stderr
    assert "cost so far: $" in status.stdout
    # ... and, idle, goes away after the idle timeout.
    wait_for(lambda: alive_nodes(fake, BIG) == [], timeout=120,
             what="the idle CPU-big machine to be terminated")
    from ray.util.state import list_nodes

    ended = [n for n in list_nodes(address=fake.dashboard_address, detail=True)
             if n.node_id == node_id]
    assert ended and ended[0].state == "DEAD"
    assert machine_resource(BIG) in ended[0].resources_total


def test_min_machines_keeps_one_warm_and_status_shows_it(fake: FakeCluster,
                                                         spell_on_fake: Spell,
                                                         project: Path,
                                                         tmp_path: Path) -> None:
    fake.set_machine_types([cpu_big(1)])  # spell cluster machine-type scale CPU-big --min 1
    try:
        warm = wait_for(lambda: alive_nodes(fake, BIG), timeout=120,
                        what="a warm CPU-big machine")[0]
        go = tmp_path / "go"
        command = (f"python -c \"import os, time\nwhile not os.path.exists('{go}'): "
                   "time.sleep(0.2)\"")
        run_id = spell_on_fake.submit_background(command, "-t", BIG, cwd=project)
        info = spell_on_fake.wait_status(run_id, "running", timeout=120)
        assert driver_node(fake, info["ray_submission_id"]) == warm.node_id
        # spell cluster status: the machine type's node, the run on it, a cost.
        status = spell_on_fake("cluster", "status")
        assert status.returncode == 0, status.stderr
        row = next(line for line in status.stdout.splitlines()
                   if line.strip().startswith(short_node_id(warm.node_id)))
        assert BIG in row and str(run_id) in row and "$" in row
        assert any(line.split()[:2] == [BIG, "1"] for line in status.stdout.splitlines())
        go.write_text("")
        spell_on_fake.wait_status(run_id, "complete", timeout=120)
        # Idle well past the timeout, the warm machine stays (the same one).
        hold_for(lambda: [n.node_id for n in alive_nodes(fake, BIG)] == [warm.node_id],
                 seconds=IDLE_MINUTES * 60 * 3, what="the warm machine went away")
    finally:
        fake.set_machine_types([cpu_big(0)])

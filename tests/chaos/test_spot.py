"""Spot machines on Ray's fake multi-node cluster: a run on a spot type (its machine type's
--default-auto-resume on) checkpoints every second; its machine is killed mid-run (the
raylet the fake provider started, SIGKILLed). It ends `interrupted` naming the machine, a
resumed run waits (`requested`, "waiting for a CPU-spot machine") for the machine Ray's
autoscaler makes in the lost one's place, starts on it, finds the checkpoint in its working
folder, and completes; `spell info` shows the chain both ways.
(Without auto-resume: tests/chaos/test_node_faults.py. Max resumes and the options a resumed
run keeps: tests/server/test_resume.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from spellray.cluster.launcher_config import machine_resource
from spellray.schemas import MachineType
from spellray.testing.fake_cluster import FakeCluster
from tests.chaos.fake_cluster_spell import spell_on_fake_cluster
from tests.helpers import Spell, wait_for

pytestmark = pytest.mark.campaign

SPOT = "CPU-spot"
# Counts to 30, one step a second, from its checkpoint: a resumed run goes on from there.
CHECKPOINTING = ('n=$(cat ckpt.txt 2>/dev/null || echo 0); echo "starting at $n"; '
                 'while [ "$n" -lt 30 ]; do n=$((n+1)); echo "$n" > ckpt.txt; sleep 1; done; '
                 'echo "done at $n"')


def _spot() -> MachineType:
    # One machine at most: the resumed run can only run on one made after the loss.
    return MachineType(name=SPOT, num_cpus=1, resources={machine_resource(SPOT): 1},
                       machine_cpus=1, price_per_hour=0.1, min_machines=1, max_machines=1,
                       idle_timeout_minutes=1, spot=True, default_auto_resume=True)


# Ray's autoscaler (v1, as the fake cluster runs it) terminates a machine whose raylet the
# GCS has not reported alive for this long (default 30 s), then makes another in its place
# (spellray/testing/fake_node_provider.py). Not lower: a new machine's raylet must register
# within it on a loaded machine.
HEARTBEAT_TIMEOUT = {"AUTOSCALER_HEARTBEAT_TIMEOUT_S": "10"}


@pytest.fixture
def fake_spell(tmp_path: Path) -> Iterator[tuple[FakeCluster, Spell]]:
    with spell_on_fake_cluster(tmp_path, _spot(), HEARTBEAT_TIMEOUT) as both:
        yield both


def _node_ids(cluster: FakeCluster) -> set[str]:
    """Every node the cluster has had, alive or dead."""
    from ray.util.state import list_nodes

    return {n.node_id for n in list_nodes(address=cluster.dashboard_address, detail=True)}


def _kill_node(cluster: FakeCluster, node_id: str) -> None:
    found = subprocess.run(["pgrep", "-f", f"raylet.*--node_id={node_id}"],
                           capture_output=True, text=True).stdout.split()
    assert len(found) == 1, found
    os.kill(int(found[0]), signal.SIGKILL)


@pytest.mark.timeout(900)  # a cluster, a run, a loss, a machine made and a second run
def test_a_spot_run_whose_machine_is_lost_resumes_from_its_checkpoint(
        fake_spell: tuple[FakeCluster, Spell], project: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    cluster, spell = fake_spell
    # Outputs saved every second (a setting the runner reads, so -e sets it per run).
    run_id = spell.submit_background(CHECKPOINTING, "-t", SPOT, "--max-resumes", "2",
                                     "-e", "SPELLRAY_OUTPUT_SYNC_SECONDS=1", cwd=project)
    info = spell.wait_status(run_id, "running", timeout=240)
    assert info["auto_resume"] and info["max_resumes"] == 2, info
    saved = spell.storage / "runs" / str(run_id) / "ckpt.txt"
    wait_for(lambda: saved.exists() and int(saved.read_text() or 0) >= 3, timeout=120,
             what="the run's checkpoint saved while it runs")
    node_id = JobSubmissionClient(cluster.dashboard_address).get_job_info(
        info["ray_submission_id"]).driver_node_id
    # Who waits on the run follows it on into the run it is resumed as: `spell logs -f`,
    # the SDK's wait, and Spell's wait_status (its Run becomes the resumed run).
    followers = {
        "logs -f": spell.popen("logs", "-f", str(run_id), cwd=project),
        "sdk": subprocess.Popen([sys.executable, "-c", SDK_WAIT, str(run_id)], env=spell.env,
                                cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True),
        "spell": subprocess.Popen([sys.executable, "-c", SPELL_WAIT, str(run_id)],
                                  env=spell.env, cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)}
    seen = _node_ids(cluster)
    killed_at = time.time()
    _kill_node(cluster, node_id)

    ended = spell.wait_status(run_id, "interrupted", "failed", "complete", timeout=240)
    print(f"\nspot node killed: run {run_id} {ended['status']} "
          f"{time.time() - killed_at:.1f} s after the kill: {ended['status_reason']}")
    assert ended["status"] == "interrupted", ended
    assert ended["status_reason"].startswith(f"the {SPOT} machine it ran on (node {node_id})")
    resumed = wait_for(lambda: spell.run_info(run_id)["resumed_as"], timeout=60,
                       what="the resumed run")
    # No machine of the type has room until the autoscaler replaces the lost one: the
    # resumed run says what it waits for, in the API, `spell ps` and `spell info`.
    queued = spell.run_info(resumed)
    assert queued["status"] == "requested", queued
    assert queued["waiting"] == f"waiting for a {SPOT} machine", queued
    wide = replace(spell, extra_env={**spell.extra_env, "COLUMNS": "200"})  # no cut cells
    assert f"requested (waiting for a {SPOT} machine) (from {run_id})" in wide("ps").stdout
    assert f"requested (waiting for a {SPOT} machine)" in spell("info", str(resumed)).stdout
    done = spell.wait_status(resumed, "complete", "failed", "interrupted", timeout=300)
    print(f"resumed as run {resumed}: {done['status']} "
          f"{time.time() - killed_at:.1f} s after the kill")
    assert done["status"] == "complete", spell.diagnose(resumed)
    assert done["resumed_from"] == run_id, done
    log = spell("logs", str(resumed)).stdout
    started_at = int(log.split("starting at ")[1].split()[0])
    assert started_at >= 3, log  # from the checkpoint, not from 0
    assert "done at 30" in log, log
    assert f"resumed from run {run_id}" in log, log
    new_node = JobSubmissionClient(cluster.dashboard_address).get_job_info(
        done["ray_submission_id"]).driver_node_id
    assert new_node not in seen, (new_node, seen)  # a machine made after the loss
    shown = spell("info", str(run_id)).stdout
    assert f"resumed as {resumed}" in shown, shown
    assert f"resumed from {run_id}" in spell("info", str(resumed)).stdout
    assert f"from {run_id}" in spell("ps").stdout

    said = {name: process.communicate(timeout=120) for name, process in followers.items()}
    codes = {name: process.returncode for name, process in followers.items()}
    assert codes == {"logs -f": 0, "sdk": 0, "spell": 0}, (codes, said)
    out, err = said["logs -f"]
    assert "done at 30" in out, out  # the resumed run's log, after the first one's
    assert f"run {run_id} interrupted: the {SPOT} machine" in err, err
    assert f"; resumed as run {resumed}" in err and f"run {resumed} complete" in err, err
    assert said["sdk"][0].split() == [str(resumed), "complete", str(run_id)], said["sdk"]
    assert said["spell"][0].split() == [str(resumed), "complete"], said["spell"]


# `client.runs.wait(N)` of the spellray SDK, and Spell's `wait_status`, from a process of
# their own as a workflow's manager would.
SDK_WAIT = """import sys
from spellray.client import from_environment
run = from_environment().runs.wait(int(sys.argv[1]))
print(run.id, run.status.value, run.resumed_from)
"""
SPELL_WAIT = """import sys
import spell.client
client = spell.client.from_environment()
run = client.runs.get(int(sys.argv[1]))
run.wait_status(client.runs.COMPLETE)
print(run.id, run.status)
"""


def _node_end(cluster: FakeCluster, node_id: str) -> str | None:
    """How a node ended, as Ray's state API says ("Terminated due to preemption: ..." for a
    node drained for preemption, which leaves once it is idle); None while it is alive."""
    from ray.util.state import list_nodes

    [node] = [n for n in list_nodes(address=cluster.dashboard_address, detail=True)
              if n.node_id == node_id]
    return node.state_message if node.state == "DEAD" else None


@pytest.mark.timeout(900)  # a cluster of one machine and a run
def test_an_interruption_notice_saves_outputs_stops_the_command_and_drains_the_node(
        fake_spell: tuple[FakeCluster, Spell], project: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    from spellray.testing.fake_metadata import FakeMetadata

    cluster, spell = fake_spell
    metadata = FakeMetadata("aws")
    try:
        # The command checkpoints on SIGTERM, as a script that heeds the notice would.
        command = ("trap 'echo got SIGTERM; echo 7 > on_term.txt; exit 0' TERM; "
                   "echo 1 > ckpt.txt; while true; do sleep 0.2; done")
        run_id = spell.submit_background(
            command, "-t", SPOT, "--disable-auto-resume", "-e",
            f"SPELLRAY_METADATA_URL={metadata.url}", "-e", "SPELLRAY_METADATA_POLL_SECONDS=0.2",
            cwd=project)
        info = spell.wait_status(run_id, "running", timeout=240)
        wait_for(lambda: metadata.asked > 0, timeout=120, what="the runner to watch")
        node_id = JobSubmissionClient(cluster.dashboard_address).get_job_info(
            info["ray_submission_id"]).driver_node_id
        metadata.announce()
        ended = spell.wait_status(run_id, "interrupted", "failed", "complete", "stopped",
                                  timeout=120)
    finally:
        metadata.stop()
    assert ended["status"] == "interrupted", spell.diagnose(run_id)
    assert ended["status_reason"] == (
        f"the {SPOT} machine it ran on is being taken back (AWS spot/instance-action: "
        "terminate at 2026-12-07T08:00:00Z)"), ended
    log = spell("logs", str(run_id)).stdout
    assert "interruption notice" in log and "got SIGTERM" in log, log
    assert f"node {node_id} drained" in log, log
    outputs = {o["path"] for o in spell.api("GET", f"/api/runs/{run_id}/outputs").json()}
    assert {"ckpt.txt", "on_term.txt"} <= outputs, outputs
    ended_as = wait_for(lambda: _node_end(cluster, node_id), timeout=120,
                        what="the drained node to leave")
    assert ended_as.startswith("Terminated due to preemption"), ended_as
    assert ended["resumed_as"] is None  # --disable-auto-resume

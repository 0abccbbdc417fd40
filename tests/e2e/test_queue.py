"""The run queue end to end: runs wait in spellray (not as pending Ray jobs), in order,
with their position shown, and every one completes however long it waited.

Its own 1-CPU head whose job manager gives up on a pending job after 20 s (Ray's default is
900 s): four 15-second runs queue longer than that. Before the queue, three of four failed
with "Job supervisor actor failed to start within 20.0 seconds".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import make_spell, start_ray_head, stop_ray_head
from tests.helpers import Spell, wait_for

START_TIMEOUT = "20"


def _node_state(pid: int, address: str) -> str | None:
    """"up" once the head's node is registered, "died" if `ray start` gave up, else None."""
    import psutil
    from ray.util.state import list_nodes

    if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
        return "died"
    try:
        return "up" if any(n.state == "ALIVE" for n in list_nodes(address=address)) else None
    except Exception:  # the dashboard may not answer yet
        return None


def steady_head(tmp: Path, attempts: int = 3) -> tuple[int, str]:
    """A 1-CPU head whose node is up. On a loaded machine `ray start` may answer on its
    dashboard, then give up on its raylet (Ray's fixed 30 s) and exit: start again."""
    for attempt in range(attempts):
        pid, address = start_ray_head(tmp / f"head-{attempt}", num_cpus=1)
        state = wait_for(partial(_node_state, pid, address), timeout=180,
                         what="the Ray head's node")
        if state == "up":
            return pid, address
        stop_ray_head(pid)
    raise AssertionError(f"no Ray head came up in {attempts} attempts")


@pytest.fixture(scope="module")
def short_timeout_spell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spell]:
    tmp = tmp_path_factory.mktemp("queue")
    before = os.environ.get("RAY_JOB_START_TIMEOUT_SECONDS")
    os.environ["RAY_JOB_START_TIMEOUT_SECONDS"] = START_TIMEOUT  # the head inherits it
    try:
        pid, address = steady_head(tmp)
    finally:
        if before is None:
            del os.environ["RAY_JOB_START_TIMEOUT_SECONDS"]
        else:
            os.environ["RAY_JOB_START_TIMEOUT_SECONDS"] = before
    installation = make_spell(tmp, address)
    try:
        started = installation("server", "start")
        assert started.returncode == 0, started.stderr
        yield installation
    finally:
        installation("server", "stop")
        stop_ray_head(pid)


def ray_jobs(spell: Spell) -> dict[str, str]:
    from ray.job_submission import JobSubmissionClient

    return {job.submission_id: job.status.value
            for job in JobSubmissionClient(spell.ray_address).list_jobs()}


# Four 15-second runs one after another, after the module's own head and server start.
@pytest.mark.timeout(900)
def test_runs_queued_past_rays_start_timeout_all_complete(short_timeout_spell: Spell,
                                                         project: Path) -> None:
    spell = short_timeout_spell
    runs = [spell.submit_background("sleep 15", cwd=project) for _ in range(4)]
    # The last waits with its position shown, and is no Ray job yet.
    last = spell.run_info(runs[-1])
    assert last["status"] == "requested" and last["ray_submission_id"] is None
    # Its position is the number of runs still queued before it (two or three by now).
    ahead = re.compile(r"waiting for a CPU machine \([23] ahead\)")
    assert ahead.fullmatch(last["waiting"] or ""), last
    spell.extra_env["COLUMNS"] = "200"  # the status whole on one line (narrow ones wrap it)
    try:
        assert ahead.search(spell("ps").stdout)
    finally:
        del spell.extra_env["COLUMNS"]
    info = spell("info", str(runs[-1])).stdout
    assert re.search(r"requested \(waiting for a CPU machine \(\d ahead\)\)", info), info

    def all_ended() -> bool:
        # Meanwhile Ray never holds more pending jobs than the 1-CPU head can start.
        assert list(ray_jobs(spell).values()).count("PENDING") <= 1
        return all(spell.run_info(r)["status"] in ("complete", "failed", "killed")
                   for r in runs)

    wait_for(all_ended, timeout=300, interval=0.5, what="the four queued runs to end")
    for run_id in runs:
        info = spell.run_info(run_id)
        assert info["status"] == "complete", spell.diagnose(run_id)
    started = [spell.run_info(r)["started_at"] for r in runs]
    assert started == sorted(started)  # one owner: first in, first out


@pytest.mark.timeout(900)
def test_killing_a_queued_run_never_reaches_ray(short_timeout_spell: Spell,
                                                project: Path) -> None:
    spell = short_timeout_spell
    holder = spell.submit_background("sleep 600", cwd=project)  # killed below
    spell.wait_status(holder, "running")
    queued = spell.submit_background("echo never", cwd=project)
    waiting = spell.run_info(queued)
    assert waiting["waiting"] == "waiting for a CPU machine"
    killed = spell("kill", str(queued))
    assert killed.returncode == 0, killed.stderr
    info = spell.run_info(queued)
    assert info["status"] == "killed" and info["ray_submission_id"] is None
    stopped = spell.submit_background("echo never", cwd=project)
    assert spell("stop", str(stopped)).returncode == 0
    assert spell.run_info(stopped)["status"] == "stopped"
    assert spell("kill", str(holder)).returncode == 0
    spell.wait_status(holder, "killed")
    # Neither queued run ever became a Ray job.
    jobs = ray_jobs(spell)
    assert not any(sid.endswith((f"-run-{queued}", f"-run-{stopped}")) for sid in jobs)

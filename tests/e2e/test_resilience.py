"""Runs end right when parts fail: the server restarted, the runner killed, Ray restarted."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_spell, start_ray_head, stop_ray_head
from tests.helpers import Spell, free_port, wait_for

# Runs ~4 s, then writes an output and sends a metric: long enough to break things while
# it runs.
WORK = ("python -c \"import time\nfor i in range(20):\n print('step', i, flush=True)\n"
        " time.sleep(0.2)\nopen('done.txt', 'w').write('ok')\n"
        "from spellray.metrics import send_metric\nsend_metric('late', 7)\nprint('finished')\"")




def _kill_server(spell: Spell) -> None:
    os.kill(spell.state["server_pid"], signal.SIGKILL)
    wait_for(lambda: subprocess.run(["kill", "-0", str(spell.state["server_pid"])],
                                    capture_output=True).returncode != 0, what="server gone")


@pytest.fixture
def own_spell(tmp_path: Path, ray_head: str):
    installation = make_spell(tmp_path, ray_head)
    assert installation("server", "start").returncode == 0
    yield installation
    installation("server", "stop")


def test_run_ends_right_when_the_server_was_down_as_it_finished(own_spell: Spell,
                                                               project: Path) -> None:
    run_id = own_spell.submit_background(WORK, cwd=project)
    own_spell.wait_status(run_id, "running")
    _kill_server(own_spell)
    # The runner finishes on its own: result, log and outputs straight to storage.
    result = wait_for(lambda: own_spell.result(run_id), what="the runner's result")
    assert result["status"] == "complete"
    assert own_spell("server", "start").returncode == 0
    info = own_spell.wait_status(run_id, "complete", "failed")
    assert info["status"] == "complete" and info["exit_code"] == 0
    logs = own_spell("logs", str(run_id))
    assert "step 19" in logs.stdout and "finished" in logs.stdout
    assert (own_spell.storage / "runs" / str(run_id) / "done.txt").read_text() == "ok"
    # Its metric came after the kill and outlived the runner's drain: the server took it
    # from storage when it learned the run ended.
    late = own_spell.api("GET", f"/api/runs/{run_id}/metrics/late")
    assert late.status_code == 200, late.text
    assert [(v["index"], v["value"]) for v in late.json()["values"]] == [(0, 7)]


def held_until(release: Path) -> str:
    """A command that runs until ``release`` exists (at most 5 minutes), then finishes: a run
    that is surely still running however slow the machine is."""
    return (f"python -c \"import os, time\nfor i in range(1500):\n"
            f" if os.path.exists('{release}'): break\n time.sleep(0.2)\nprint('finished')\"")


def test_runner_reports_resume_after_a_server_restart(own_spell: Spell, project: Path,
                                                      tmp_path: Path) -> None:
    release = tmp_path / "release"
    run_id = own_spell.submit_background(held_until(release), cwd=project)
    own_spell.wait_status(run_id, "running")
    _kill_server(own_spell)
    assert own_spell("server", "start").returncode == 0
    assert own_spell.result(run_id) is None  # still running after the restart
    release.touch()
    followed = own_spell("logs", "-f", str(run_id))
    assert followed.returncode == 0 and "finished" in followed.stdout
    assert own_spell.run_info(run_id)["status"] == "complete"


def test_killed_runner_ends_the_run_failed_with_a_reason(own_spell: Spell,
                                                         project: Path) -> None:
    marker = f"marker{free_port()}"
    run_id = own_spell.submit_background(f"sleep 300 # {marker}", cwd=project)
    own_spell.wait_status(run_id, "running")
    pattern = f"spellray.runner {run_id} --storage {own_spell.storage}"
    pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    assert len(pids) == 1, pids
    os.kill(int(pids[0]), signal.SIGKILL)
    info = own_spell.wait_status(run_id, "failed")
    assert "runner ended without reporting" in info["status_reason"]
    # The user's command does not outlive its runner.
    wait_for(lambda: subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1,
             what="the user's command to be ended")
    assert "failed" in own_spell("info", str(run_id)).stdout


def test_logs_survive_a_ray_restart_and_vanished_jobs_fail(tmp_path: Path,
                                                           project: Path) -> None:
    dashboard = free_port()
    head, address = start_ray_head(tmp_path, num_cpus=2, dashboard_port=dashboard)
    spell = make_spell(tmp_path, address)
    try:
        done = spell("run", "echo kept in storage", cwd=project)
        assert done.returncode == 0, done.stderr
        finished = int(done.stderr.split("run ")[1].split()[0])
        running = spell.submit_background("sleep 300", cwd=project)
        spell.wait_status(running, "running")
        stop_ray_head(head)
        logs = spell("logs", str(finished))  # Ray is down: the log comes from storage
        assert logs.returncode == 0 and "kept in storage" in logs.stdout
        head, _ = start_ray_head(tmp_path, num_cpus=2, dashboard_port=dashboard)
        info = spell.wait_status(running, "failed")
        assert "vanished" in info["status_reason"]
        assert "kept in storage" in spell("logs", str(finished)).stdout
    finally:
        spell("server", "stop")
        stop_ray_head(head)

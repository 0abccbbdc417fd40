"""The embedded local default: spellray starts a Ray head itself when none answers, and
`spell server stop` stops only what spellray started."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from spellray.cluster.local import ray_reachable
from tests.conftest import make_spell
from tests.helpers import Spell, free_port, wait_for


def test_first_use_starts_ray_and_server_stop_ends_both(tmp_path: Path, project: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    spell = make_spell(tmp_path, address)
    spell.extra_env.update(SPELLRAY_RAY_GCS_PORT=str(free_port()), SPELLRAY_RAY_NUM_CPUS="2")
    # A user who once ran ray.init() here has ~/.ray/auth_token, which makes Ray 2.60's
    # `ray start` turn token auth on unless told otherwise.
    user_home = tmp_path / "user-home"
    (user_home / ".ray").mkdir(parents=True)
    (user_home / ".ray" / "auth_token").write_text("a-token-from-an-earlier-ray-init")
    spell.extra_env["HOME"] = str(user_home)
    try:
        done = spell("run", "python train.py", cwd=project)  # no `server start` first
        assert done.returncode == 0, done.stderr
        assert spell.state["ray_pid"] and ray_reachable(address)
        assert "started by spellray" in spell("server", "status").stdout
    finally:
        stopped = spell("server", "stop")
    assert "local Ray head" in stopped.stdout
    assert not ray_reachable(address)
    assert spell("server", "status").returncode == 1


def test_server_stop_leaves_a_ray_it_did_not_start(tmp_path: Path, ray_head: str) -> None:
    spell = make_spell(tmp_path, ray_head)
    assert spell("server", "start").returncode == 0
    assert spell.state["ray_pid"] is None
    stopped = spell("server", "stop")
    assert "spellray server" in stopped.stdout and "Ray head" not in stopped.stdout
    assert ray_reachable(ray_head)
    down = spell("ps")
    assert down.returncode == 0  # any command starts the server again on use
    spell("server", "stop")


def test_ctrl_c_detaches_and_the_run_goes_on(spell: Spell, project: Path) -> None:
    follower = spell.popen("run", "python -c \"import time\nfor i in range(300):\n"
                           " print('tick', i, flush=True); time.sleep(0.2)\"", cwd=project)
    assert follower.stdout is not None
    wait_for(lambda: "tick" in follower.stdout.readline(), what="the log to stream")
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 130, err
    assert "Detached from run" in err and "spell logs -f" in err
    run_id = int(err.split("Detached from run ")[1].split(";")[0])
    assert spell.run_info(run_id)["status"] == "running"
    assert spell("kill", str(run_id)).returncode == 0


def test_verbose_and_code_limit(spell: Spell, project: Path) -> None:
    verbose = spell("run", "-v", "true", cwd=project)
    assert verbose.returncode == 0, verbose.stderr
    said = verbose.stderr.split("Ray job ")[1].split("\n")[0]
    # Submitted already, or said to wait in spellray's queue: never "None".
    assert said.startswith(("spellray-", "none yet (waiting: ")), verbose.stderr
    started = re.search(r"run (\d+) started", verbose.stderr)
    assert started, verbose.stderr
    run_id = int(started.group(1))
    assert "spellray-" in spell("info", str(run_id)).stdout  # the job it became
    limited = Spell(spell.home, spell.ray_address, {"SPELLRAY_CODE_LIMIT_MB": "0"})
    refused = limited("run", "true", cwd=project)
    assert refused.returncode == 1 and "over the 0 MB limit" in refused.stderr

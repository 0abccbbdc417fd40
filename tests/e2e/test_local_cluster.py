"""The embedded local default: spellray starts a Ray head itself when none answers, and
`spell server stop` stops only what spellray started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from spellray.cluster.local import ray_reachable
from tests.conftest import make_spell
from tests.helpers import Spell, free_port, wait_for


def _jobs_api(address: str, token: str | None) -> int:
    """The status Ray's Jobs API answers a listing with, sent with ``token`` or none."""
    request = urllib.request.Request(f"{address}/api/jobs/")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# A GCS client reading a key: prints "ok", or the class of Ray's refusal.
_GCS_PROBE = """
import sys
from ray._raylet import GcsClient
try:
    GcsClient(address=sys.argv[1]).internal_kv_get(b"probe", None, timeout=30)
    print("ok")
except Exception as exc:
    print(type(exc).__name__)
"""


def _gcs_answer(gcs: str, **auth: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    probe = subprocess.run([sys.executable, "-c", _GCS_PROBE, gcs], env={**env, **auth},
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip()


def test_first_use_starts_ray_and_server_stop_ends_both(tmp_path: Path, project: Path) -> None:
    address = f"http://127.0.0.1:{free_port('')}"
    spell = make_spell(tmp_path, address)
    gcs_port = free_port("")
    spell.extra_env.update(SPELLRAY_RAY_GCS_PORT=str(gcs_port), SPELLRAY_RAY_NUM_CPUS="2")
    # A user who once ran ray.init() here has ~/.ray/auth_token, which Ray 2.60's `ray
    # start` would take as the head's token: spellray's head uses its own, and leaves it.
    user_home = tmp_path / "user-home"
    (user_home / ".ray").mkdir(parents=True)
    users_token = user_home / ".ray" / "auth_token"
    users_token.write_text("a-token-from-an-earlier-ray-init")
    spell.extra_env["HOME"] = str(user_home)
    try:
        done = spell("run", "python train.py", cwd=project)  # no `server start` first
        assert done.returncode == 0, done.stderr
        assert spell.state["ray_pid"] and ray_reachable(address)
        assert "started by spellray" in spell("server", "status").stdout
        # Ray's own token auth is on: only a client with spellray's token gets in.
        ray_token_file = spell.home / "ray_auth_token"
        assert ray_token_file.stat().st_mode & 0o777 == 0o600
        ray_token = ray_token_file.read_text().strip()
        assert _jobs_api(address, None) == 401
        assert _jobs_api(address, users_token.read_text()) == 403
        assert _jobs_api(address, ray_token) == 200
        gcs = f"127.0.0.1:{gcs_port}"
        assert _gcs_answer(gcs) == "AuthenticationError"
        assert _gcs_answer(gcs, RAY_AUTH_MODE="token",
                           RAY_AUTH_TOKEN_PATH=str(users_token)) == "AuthenticationError"
        assert _gcs_answer(gcs, RAY_AUTH_MODE="token",
                           RAY_AUTH_TOKEN_PATH=str(ray_token_file)) == "ok"
        assert users_token.read_text() == "a-token-from-an-earlier-ray-init"
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


def test_a_server_without_the_heads_ray_token_says_so(tmp_path: Path, ray_head: str,
                                                      project: Path) -> None:
    # RAY_AUTH_TOKEN wins over the session's token file (tests/conftest.py): the server
    # sends a token the head does not know.
    spell = make_spell(tmp_path, ray_head)
    spell.extra_env["RAY_AUTH_TOKEN"] = "not-the-heads-token"
    try:
        refused = spell("run", "true", cwd=project)
        assert refused.returncode != 0
        assert "refused the server's Ray token" in refused.stderr, refused.stderr
        run = spell.run_info(1)  # a fresh home's first run
        assert run["status"] == "failed" and "Ray token" in run["status_reason"]
    finally:
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
    assert said.startswith(("spellray-", "none yet (waiting for a ")), verbose.stderr
    started = re.search(r"run (\d+) started", verbose.stderr)
    assert started, verbose.stderr
    run_id = int(started.group(1))
    assert "spellray-" in spell("info", str(run_id)).stdout  # the job it became
    limited = Spell(spell.home, spell.ray_address, {"SPELLRAY_CODE_LIMIT_MB": "0"})
    refused = limited("run", "true", cwd=project)
    assert refused.returncode == 1 and "over the 0 MB limit" in refused.stderr

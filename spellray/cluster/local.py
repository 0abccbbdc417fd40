"""The embedded local cluster: a Ray head and the spellray server, started in the background
on first use, bound to 127.0.0.1, and stopped only if spellray started them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from spellray.cluster import node_health
from spellray.cluster.ray_auth import ensure_token, token_env, token_file
from spellray.cluster.venv_field import ray_env_vars
from spellray.errors import RayUnavailable, ServerUnavailable, Unauthorized
from spellray.ports import free_port
from spellray.settings import Settings

START_TIMEOUT = 120.0
# After SIGTERM the raylet waits ~30 s for a GCS that is already gone; `ray stop` also ends
# with SIGKILL after a grace period. The process group is ours alone.
RAY_STOP_GRACE = 5.0


def _get(url: str, token: str | None = None, timeout: float = 2.0) -> int:
    """Status code of a GET, 0 when nothing answers. urllib, not httpx: this runs before
    every CLI command and must stay cheap."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def ray_reachable(address: str) -> bool:
    """Whether a Ray dashboard answers at ``address``. A head with Ray's token auth on
    answers 401 (no token) or 403 (another token): it is up all the same, and its port
    taken; whether spellray holds its token is the server's to find out."""
    return _get(f"{address.rstrip('/')}/api/version") in (200, 401, 403)


def _listening(address: str) -> bool:
    parts = urlparse(address)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 8265),
                                      timeout=2.0):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(settings.state_file.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    settings.state_file.write_text(json.dumps(state, indent=2))


@contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    """One starter at a time: ten `spell run` at once must start one server, not ten."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# Tries to start the server when another program takes its port first.
PORT_ATTEMPTS = 3


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _wait_until(ready: Any, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            raise ServerUnavailable(f"{what} exited while starting: {_tail(log)} (see {log})")
        time.sleep(0.2)
    # Never recorded in the state file, so nothing else would ever stop it.
    stop_process_group(process.pid, timeout=RAY_STOP_GRACE)
    raise ServerUnavailable(f"{what} did not start within {START_TIMEOUT:.0f} s (see {log})")


def _spawn(args: list[str], log: Path,
           env: Mapping[str, str | None] | None = None) -> subprocess.Popen:
    """``env``: variables changed from this process's environment for the child (None:
    unset)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    child = None
    if env:
        child = {k: v for k, v in os.environ.items() if k not in env}
        child.update({k: v for k, v in env.items() if v is not None})
    with log.open("ab") as out:
        # Its own session: a Ctrl-C in the terminal that started it must not stop it.
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=child)


def ray_temp_dir(gcs_port: int) -> str:
    """A Ray temp dir of the head's own. Ray's job supervisor gives each job the RAY_ADDRESS
    written in its temp dir's ray_current_cluster, which in the shared /tmp/ray is whichever
    cluster on this machine started last: with several heads (tests, the fake cloud cluster,
    a user's own), jobs that call ray.init (searches, distributed runs) joined the wrong one.
    Short and under /tmp: Ray's socket paths inside it must stay under 107 characters."""
    return f"/tmp/spellray-ray-{gcs_port}"


def start_ray_head(settings: Settings) -> int:
    address = urlparse(settings.ray_address)
    if not _ray_is_local(settings):
        raise RayUnavailable(f"the Ray cluster at {settings.ray_address} is unreachable; "
                             "start it, or unset SPELLRAY_RAY_ADDRESS to use a local one")
    args = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start",
            "--head", "--block", "--port", str(settings.ray_gcs_port),
            "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(address.port or 8265), "--disable-usage-stats",
            # Ray's fixed defaults for these (52365, 10001) collide with any other head on
            # this machine, and the head then never gets a job agent.
            # The agent's port is the OS's pick (0; Ray publishes it): a port found free
            # here was taken, on the node's own address, by another head's agent in the
            # ~20 s before this one bound it ("No available agent to submit job").
            "--dashboard-agent-listen-port", "0",
            # Any free port, not the next one up: 10002+ is Ray's worker port range. Free on
            # every interface (""): Ray binds the node's own address too.
            "--ray-client-server-port", str(free_port("", preferred=10001)),
            "--temp-dir", ray_temp_dir(settings.ray_gcs_port)]
    if settings.ray_num_cpus is not None:
        args += ["--num-cpus", str(settings.ray_num_cpus)]
    log = settings.log_dir / "ray-head.log"
    # Token auth always, with spellray's own token (ray_auth.py): Ray 2.60's bare `ray
    # start` would turn it on only when ~/.ray/auth_token exists, and then with the user's
    # token. With spellray's environment plugin loaded in its runtime_env agent
    # (venv_plugin.py), and the node health check every head spellray starts has
    # (node_health.py).
    token = ensure_token(token_file(settings.home))
    process = _spawn(args, log,
                     env={**token_env(token), **ray_env_vars(), **node_health.HEAD_ENV})
    _wait_until(lambda: ray_reachable(settings.ray_address), process, "the local Ray head", log)
    return process.pid


def _server_ready(url: str, settings: Settings) -> bool:
    if not settings.token_file.exists():
        return False
    return _get(f"{url}/api/info", settings.token_file.read_text().strip()) == 200


def local_server_url(settings: Settings) -> str | None:
    """The URL of the local server if it is up, else None."""
    state = read_state(settings)
    if not pid_alive(state.get("server_pid")):
        return None
    url = f"http://127.0.0.1:{state['port']}"
    if not settings.token_file.exists():
        return None  # still starting: the server writes the token first
    status = _get(f"{url}/api/info", settings.token_file.read_text().strip())
    if status == 401:
        # Our server is up but the token file is not its token: starting a second server
        # would orphan the first (and make the wrong token an admin's), so say so instead.
        raise Unauthorized(f"the local spellray server refused the token in "
                           f"{settings.token_file}; put its token back, or restart the "
                           "server with: spell server stop && spell server start")
    return url if status == 200 else None


def _ray_is_local(settings: Settings) -> bool:
    return urlparse(settings.ray_address).hostname in ("127.0.0.1", "localhost")


def ensure_local_server(settings: Settings) -> str:
    """Start what is not running yet; return the server's URL.

    A Ray head is started when none answers, except that a head someone else runs is theirs
    to restart: while it is down, commands that need only storage (`spell logs`) still work.
    """
    state = read_state(settings)
    url = local_server_url(settings)
    # The common case: one request to the server; for a head we started, whether its
    # dashboard's port takes a connection (not a request: the dashboard answers one in tens
    # of milliseconds, and this runs before every command).
    if url and not (state.get("ray_managed") and not _listening(settings.ray_address)):
        return url
    with _start_lock(settings):
        state = read_state(settings)
        url = local_server_url(settings)
        if not ray_reachable(settings.ray_address) and (state.get("ray_managed") or not url):
            state.update(ray_pid=start_ray_head(settings), ray_managed=True)
        elif not pid_alive(state.get("ray_pid")):
            state.update(ray_pid=None, ray_managed=False)  # the head that answers is not ours
        state["ray_address"] = settings.ray_address
        _write_state(settings, state)  # a head we started is recorded even if the server fails
        if url:
            return url
        log = settings.log_dir / "server.log"
        preferred = state.get("port") or 8300
        for attempt in range(PORT_ATTEMPTS):
            port = settings.server_port or free_port(preferred=preferred + attempt, scan=100)
            logged = log.stat().st_size if log.exists() else 0
            process = _spawn([sys.executable, "-m", "spellray.server", "--port", str(port)], log,
                             _server_ray_env(settings, state))
            state.update(server_pid=process.pid, port=port)
            _write_state(settings, state)
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_until(lambda: _server_ready(url, settings), process,  # noqa: B023
                            "the spellray server", log)
                return url
            except ServerUnavailable:
                # Another program took the free port between our check and the server's
                # bind: try the next one, unless the user asked for this port.
                if settings.server_port or not _lost_port_race(log, logged):
                    raise
        raise ServerUnavailable(f"no free port for the spellray server near {preferred}")


def _server_ray_env(settings: Settings, state: dict[str, Any]) -> dict[str, str | None]:
    """Ray's token for the server's clients of the head: spellray's own for a head it
    started; for any other head, whatever the environment gives (nothing changed)."""
    return token_env(token_file(settings.home)) if state.get("ray_managed") else {}


def _lost_port_race(log: Path, since: int) -> bool:
    with log.open("rb") as f:
        f.seek(since)
        return b"address already in use" in f.read()


def stop_process_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group we started, SIGKILL it after ``timeout`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def stop_local(settings: Settings) -> list[str]:
    """Stop the server, and the Ray head only if spellray started it. Returns what stopped."""
    state = read_state(settings)
    stopped = []
    if pid_alive(state.get("server_pid")):
        stop_process_group(state["server_pid"], timeout=30)
        stopped.append(f"the spellray server (pid {state['server_pid']})")
    if pid_alive(state.get("ray_pid")):
        stop_process_group(state["ray_pid"], timeout=RAY_STOP_GRACE)
        stopped.append(f"the local Ray head (pid {state['ray_pid']})")
    if state:
        state.update(server_pid=None, ray_pid=None, ray_managed=False)
        _write_state(settings, state)
    return stopped

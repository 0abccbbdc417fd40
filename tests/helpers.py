"""Helpers shared by the tests: polling, free ports, the real `spell` CLI as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spellray.ports import free_port as free_port  # shared by the tests


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(predicate: Callable[[], Any], timeout: float = 90, interval: float = 0.2,
             what: str = "condition") -> Any:
    """Poll until ``predicate`` returns something truthy; never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


SPELL = [sys.executable, "-m", "spellray.cli.main"]


def end_process(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM a server the tests started; SIGKILL it if it is still there after ``grace``."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


@dataclass
class Spell:
    """A spellray installation: its home, environment and the CLI bound to them."""

    home: Path
    ray_address: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
        env.update(SPELLRAY_HOME=str(self.home), SPELLRAY_RAY_ADDRESS=self.ray_address,
                   SPELLRAY_RECONCILE_INTERVAL="0.5", **self.extra_env)
        return env

    def __call__(self, *args: str, cwd: Path | None = None, timeout: float = 300,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SPELL, *args], cwd=cwd or self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout, input=input)

    def popen(self, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        # The CLI as a user at a terminal runs it, where Ctrl-C is not ignored: a test run
        # started in the background of a non-interactive shell inherits SIGINT ignored,
        # and Python then never turns Ctrl-C into KeyboardInterrupt.
        return subprocess.Popen([*SPELL, *args], cwd=cwd or self.home, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_sigint_default)

    # -- direct looks at the real state, for assertions --------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.home / "server.json").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state['port']}"

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def run_info(self, run_id: int) -> dict[str, Any]:
        response = self.api("GET", f"/api/runs/{run_id}")
        response.raise_for_status()
        return response.json()

    def wait_status(self, run_id: int, *statuses: str, timeout: float = 120) -> dict[str, Any]:
        try:
            return wait_for(lambda: (i := self.run_info(run_id))["status"] in statuses and i,
                            timeout, what=f"run {run_id} to be {' or '.join(statuses)}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose(run_id)}") from None

    def diagnose(self, run_id: int) -> str:
        """What a stuck run looks like from every side, for the failure message."""
        info = self.run_info(run_id)
        job = subprocess.run(["ray", "job", "status", "--address", self.ray_address,
                              info.get("ray_submission_id") or "?"],
                             capture_output=True, text=True, timeout=60)
        server_log = (self.home / "logs" / "server.log").read_text().splitlines()[-30:]
        return "\n".join([f"run: {json.dumps(info, default=str)}",
                          f"ray job status: {job.stdout.strip()} {job.stderr.strip()[-500:]}",
                          f"runner result: {self.result(run_id)}",
                          "server log tail:", *server_log])

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    def result(self, run_id: int) -> dict[str, Any] | None:
        """The runner's own record of how the run ended, once it has written it."""
        path = self.storage / "runs" / str(run_id) / ".spell" / "run.json"
        return json.loads(path.read_text()).get("result") if path.exists() else None

    def submit_background(self, command: str, *options: str, cwd: Path) -> int:
        done = self("run", "-b", *options, command, cwd=cwd)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[1])


@dataclass
class RaylessServer:
    """A real spellray server over HTTP, pointed at a Ray address where nothing listens: for
    the SDK and CLI suites, which need the API but never a cluster."""

    home: Path
    url: str
    process: subprocess.Popen[bytes]

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    @property
    def env(self) -> dict[str, str]:
        """What points the CLI and SDK at this server (and nowhere else)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
        env.update(SPELLRAY_HOME=str(self.home), SPELLRAY_SERVER_URL=self.url,
                   SPELLRAY_TOKEN=self.token)
        return env

    def stop(self) -> None:
        end_process(self.process)


def start_rayless_server(home: Path, **settings: str) -> RaylessServer:
    """``settings``: more of the server's environment (SPELLRAY_... variables)."""
    home.mkdir(parents=True, exist_ok=True)
    port, nothing = free_port(), free_port()  # nothing listens on the second
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env.update(SPELLRAY_HOME=str(home), SPELLRAY_RAY_ADDRESS=f"http://127.0.0.1:{nothing}",
               **settings)
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "spellray.server", "--port", str(port)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = RaylessServer(home=home, url=f"http://127.0.0.1:{port}", process=process)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {(home / 'server.log').read_text()}")
        if not (home / "token").exists():
            return False
        try:
            return httpx.get(f"{server.url}/api/info", timeout=2,
                             headers={"Authorization": f"Bearer {server.token}"}).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=120, what="the spellray server to answer")
    except BaseException:
        server.stop()
        raise
    return server

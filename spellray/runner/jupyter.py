"""A workspace's Jupyter, started by the runner as the run's command: JupyterLab (or the
classic notebook) in the run's folder, on a port the OS picks, on this node's private
address, with a random token only the spellray server's proxy is told, and base_url the
proxy's path, so nothing is rewritten on the way.

Once Jupyter answers, the runner reports its address to the server; until then the
workspace is `building`. Idle handling is Jupyter's own: kernels culled after
``idle_kernel_timeout`` (connected ones too), and the server shuts itself down after
``no_activity_timeout`` with no kernel and no request, exiting cleanly.
"""

from __future__ import annotations

import json
import secrets
import shlex
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from spellray.runner.server_api import ServerApi

# How long Jupyter may take to answer before the runner gives up reporting it.
READY_SECONDS = 300.0
POLL_SECONDS = 0.05
# How often the runner reads Jupyter's idle clock (its /api/status, which is no activity
# itself): what tells an idle shutdown from File > Shut Down when Jupyter exits.
IDLE_POLL_SECONDS = 5.0
# Jupyter's config for workspaces: keeps Jupyter's token out of the pages it serves.
CONFIG_PATH = Path(__file__).with_name("jupyter_config")


def reachable_ip(server_url: str) -> str:
    """This node's address as the server sees it: the source address of a route to the
    server (no packet is sent). Loopback when the server is on this machine."""
    host = urlsplit(server_url).hostname or "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class JupyterServer:
    def __init__(self, spec: dict, folder: Path, server_url: str) -> None:
        self.spec = spec
        self.ip = reachable_ip(server_url)
        self.token = secrets.token_urlsafe(32)
        # Jupyter writes jpserver-<pid>.json here once it listens: the port it was given.
        self.runtime_dir = folder.with_name(f"{folder.name}.jupyter")
        self.runtime_dir.mkdir(exist_ok=True)
        self.address: str | None = None
        # Jupyter's last_activity as last read, and when (monotonic): see idle_seconds().
        self._idle: tuple[float, float] | None = None

    def command(self) -> str:
        """The shell command: the run environment's Python, so kernels run in it too."""
        spec = self.spec
        app = "notebook" if spec.get("notebook") else "jupyterlab"
        kernel_timeout = int(spec.get("idle_kernel_timeout") or 0)
        # Culling is checked every cull_interval: small enough to honour the timeout
        # within a minute, as Spell did.
        interval = max(1, min(60, kernel_timeout // 2 or 1))
        args = [
            sys.executable, "-m", app, "--no-browser", f"--ip={self.ip}", "--port=0",
            "--ServerApp.port_retries=0", f"--ServerApp.base_url={spec['base_url']}",
            # The server proxies from the node's private address: Jupyter's DNS-rebinding
            # guard (a Host that is not loopback) would refuse it.
            "--ServerApp.allow_remote_access=True", "--ServerApp.root_dir=.",
            # Jupyter refuses root unless told; a run is as root as its node's Ray is.
            "--allow-root",
            f"--MappingKernelManager.cull_idle_timeout={kernel_timeout}",
            f"--MappingKernelManager.cull_interval={interval}",
            "--MappingKernelManager.cull_connected=True",
            f"--ServerApp.shutdown_no_activity_timeout="
            f"{int(spec.get('no_activity_timeout') or 0)}",
        ]
        return "exec " + shlex.join(args)

    def env(self) -> dict[str, str]:
        # The token through the environment, not the command line (`ps` shows that).
        # JUPYTER_CONFIG_PATH: Jupyter's config that keeps its token out of its pages.
        return {"JUPYTER_TOKEN": self.token, "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
                "JUPYTER_CONFIG_PATH": str(CONFIG_PATH)}

    def announce(self, api: ServerApi, alive: Callable[[], bool],
                 log: Callable[[str], None]) -> threading.Thread:
        """In the background: wait until Jupyter answers, then tell the server where."""
        def work() -> None:
            address = self._wait_ready(alive)
            if address is None:
                return
            self.address = address
            answer = api.deliver("/workspace-address",
                                 {"address": address, "token": self.token},
                                 give_up_at=lambda: time.monotonic() + 60)
            if answer is None or answer[0] >= 300:
                log(f"spellray: the server did not take Jupyter's address ({answer and answer[0]})")
            else:
                log("spellray: Jupyter answers; the workspace is running")
            api.close()
            while alive():
                self._read_idle(address)
                time.sleep(IDLE_POLL_SECONDS)

        thread = threading.Thread(target=work, name="jupyter-ready", daemon=True)
        thread.start()
        return thread

    def _wait_ready(self, alive: Callable[[], bool]) -> str | None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline and alive():
            if (port := self._port()) is not None:
                address = f"http://{self.ip}:{port}"
                if self._answers(address):
                    return address
            time.sleep(POLL_SECONDS)
        return None

    def _port(self) -> int | None:
        for info in self.runtime_dir.glob("jpserver-*.json"):
            try:
                return int(json.loads(info.read_text())["port"])
            except (OSError, ValueError, KeyError):
                continue  # being written
        return None

    def _status(self, address: str) -> dict | None:
        """Jupyter's /api/status (no activity itself); None if it does not answer."""
        request = urllib.request.Request(f"{address}{self.spec['base_url']}api/status",
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return json.loads(response.read()) if response.status == 200 else None
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def _answers(self, address: str) -> bool:
        return self._status(address) is not None

    def _read_idle(self, address: str) -> None:
        from datetime import datetime, timezone

        status = self._status(address)
        if not status or not status.get("last_activity"):
            return
        last = datetime.fromisoformat(status["last_activity"].replace("Z", "+00:00"))
        idle = (datetime.now(timezone.utc) - last).total_seconds()
        self._idle = (max(0.0, idle), time.monotonic())

    def idle_seconds(self) -> float | None:
        """How long Jupyter had been idle by now, as last read."""
        if self._idle is None:
            return None
        idle, at = self._idle
        return idle + time.monotonic() - at

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def ending(exit_code: int | None, stopped: bool, log_tail: bytes,
           no_activity_timeout: int, idle_seconds: float | None) -> tuple[str, str | None]:
    """(status, reason) of a workspace's run once Jupyter has exited: a clean exit is an
    idle shutdown when Jupyter had been idle that long, else its File > Shut Down."""
    if stopped:
        return "stopped", "stopped by user"
    if exit_code == 0:
        # Idle is read every IDLE_POLL_SECONDS; Jupyter checks its timeout on a 60 s tick.
        if no_activity_timeout and idle_seconds is not None and \
                idle_seconds >= no_activity_timeout - IDLE_POLL_SECONDS:
            return "stopped", f"idle for {no_activity_timeout} s"
        return "stopped", "Jupyter shut down (File > Shut Down)"
    lines = [line for line in log_tail.decode(errors="replace").splitlines() if line.strip()]
    last = " | ".join(line.strip() for line in lines[-5:])
    return "failed", f"Jupyter exited with code {exit_code}: {last}" if last else \
        f"Jupyter exited with code {exit_code}"

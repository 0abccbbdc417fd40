"""The cloud's interruption notice for a spot (AWS) or preemptible (GCP) machine, read from
the instance metadata while the run's command runs, and the Ray drain that follows it.

AWS answers ``/latest/meta-data/spot/instance-action`` with 404 until it takes the machine
back, then with {"action": "terminate", "time": ...} about two minutes ahead (IMDSv2 wants a
session token first; IMDSv1 answers without). GCP answers
``/computeMetadata/v1/instance/preempted`` with FALSE, then TRUE (about 30 s ahead). Both are
at 169.254.169.254; SPELLRAY_METADATA_URL points the runner elsewhere (tests: a fake server
on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

DEFAULT_METADATA_URL = "http://169.254.169.254"
AWS_NOTICE = "/latest/meta-data/spot/instance-action"
AWS_TOKEN = "/latest/api/token"
GCP_NOTICE = "/computeMetadata/v1/instance/preempted"
REQUEST_TIMEOUT = 2.0
# How long the cloud gives after its notice: Ray's drain is told the node goes then.
AWS_NOTICE_SECONDS = 120


def _get(url: str, headers: dict[str, str], method: str = "GET") -> str | None:
    """The body of a 200 answer; None for anything else (no notice, no such cloud)."""
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as answer:
            return answer.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def notice(base: str) -> str | None:
    """What the metadata says of an interruption now (one line), or None."""
    base = base.rstrip("/")
    token = _get(base + AWS_TOKEN, {"X-aws-ec2-metadata-token-ttl-seconds": "300"}, "PUT")
    aws = _get(base + AWS_NOTICE, {"X-aws-ec2-metadata-token": token} if token else {})
    if aws is not None:
        try:
            said = json.loads(aws)
            return f"AWS spot/instance-action: {said.get('action')} at {said.get('time')}"
        except ValueError:
            return f"AWS spot/instance-action: {aws.strip()[:100]}"
    gcp = _get(base + GCP_NOTICE, {"Metadata-Flavor": "Google"})
    if gcp is not None and gcp.strip().upper() == "TRUE":
        return "GCP instance/preempted: TRUE"
    return None


class NoticeWatch:
    """Asks the metadata every ``interval`` seconds in a thread; calls ``on_notice`` once."""

    def __init__(self, base: str, interval: float, on_notice: Callable[[str], None]) -> None:
        self.base, self.interval, self.on_notice = base, interval, on_notice
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spot-notice", daemon=True)

    def start(self) -> NoticeWatch:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopped.is_set():
            if (said := notice(self.base)) is not None:
                self.on_notice(said)
                return
            self._stopped.wait(self.interval)

    def close(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=REQUEST_TIMEOUT * 3)


def _node_arg(pid: int) -> str | None:
    """The --node_id=... a process was started with (a raylet's), if any."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for arg in args:
        if arg.startswith(b"--node_id="):
            return arg.split(b"=", 1)[1].decode()
    return None


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state


def own_node_id() -> str | None:
    """This process's Ray node: the node id its raylet was started with. The runner is a
    child of its job's supervisor, a Ray worker the raylet started: the raylet is an
    ancestor (or RAY_RAYLET_PID names it, where set). Asking ray.init instead could attach
    to another raylet of the same IP (the fake cluster's)."""
    if (pid := os.environ.get("RAY_RAYLET_PID")) and (node := _node_arg(int(pid))):
        return node
    ancestor = _parent(os.getpid())
    for _ in range(8):  # runner, supervisor, raylet: a few levels at most
        if ancestor is None or ancestor <= 1:
            return None
        if node := _node_arg(ancestor):
            return node
        ancestor = _parent(ancestor)
    return None


def drain_own_node(message: str, seconds_left: float = AWS_NOTICE_SECONDS) -> str:
    """Ask Ray's GCS to drain this node (preemption: no new work is placed on it); what
    happened, for the run's log."""
    node_id, address = own_node_id(), os.environ.get("RAY_ADDRESS")
    if not node_id or not address:
        return ("not drained: this process does not know its Ray node (no raylet among its "
                "parents, or RAY_ADDRESS unset)")
    try:
        from ray._raylet import GcsClient
        from ray.core.generated import autoscaler_pb2

        deadline_ms = int((time.time() + seconds_left) * 1000)
        accepted, why = GcsClient(address=address).drain_node(
            node_id, autoscaler_pb2.DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION"),
            message, deadline_ms)
    except Exception as exc:  # the run's end is reported already; the log says why
        return f"not drained: {type(exc).__name__}: {exc}"
    return f"node {node_id} drained" if accepted else f"node {node_id} not drained: {why}"

"""The run's metrics: tail the file ``spellray.metrics.send_metric`` appends to, hand each
numeric metric to the listeners at once (--stop-condition, a Tune trial), and forward every
metric, numbers and text, to the server (``POST /api/runs/<id>/metrics``) in batches,
retried while the server is down.

Two threads: the tail never waits on the server, so a listener hears of a metric within
``POLL`` seconds even while the server is unreachable.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spellray.metrics import check_name, metric_value, validate_index
from spellray.runner.server_api import Outbox, ServerApi

Listener = Callable[[dict[str, Any]], None]
# How often the file is read, and how long a metric waits to share a request with others.
POLL = 0.1
BATCH_EVERY = 0.5
# MLflow's log-batch takes up to 1000 metrics a request.
BATCH_LIMIT = 1000


class MetricsForwarder:
    def __init__(self, path: Path, api: ServerApi, listeners: list[Listener]) -> None:
        self.path = path
        self.listeners = listeners
        self.count = 0
        self._outbox = Outbox(api, "/metrics", batch_every=BATCH_EVERY,
                              batch_limit=BATCH_LIMIT, name="metrics-out")
        self._offset = 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-tail", daemon=True)
        self._thread.start()

    def send(self, metrics: list[dict[str, Any]]) -> None:
        """Forward metrics the runner made itself (hardware stats as MLflow system metrics):
        to the server only, never to the listeners (a stop condition names the user's)."""
        for metric in metrics:
            self._outbox.put(metric)

    def close(self, timeout: float) -> list[dict[str, Any]]:
        """Read what is left in the file, and deliver it, giving up after ``timeout`` s;
        the metrics the server never took (the runner stores them for the server to take
        when it learns the run ended: services/metrics.py finish_tracking)."""
        self._stop.set()
        self._thread.join()
        return self._outbox.close(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            self._read()
        self._read()

    def _read(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if metric := _parse(line):
                self.count += 1
                # Listeners compare numbers (a stop condition, Tune's score): text is shown only.
                for listener in self.listeners if not isinstance(metric["value"], str) else []:
                    try:
                        listener(metric)
                    except Exception as exc:  # one listener's bug must not stop the rest
                        print(f"spellray: a metric listener failed: {exc!r}", file=sys.stderr)
                self._outbox.put(metric)


def _parse(line: bytes) -> dict[str, Any] | None:
    """One metric line as send_metric wrote it; None for a line that is not one (a user
    process may write anything to the file, and one bad metric must not spoil a batch)."""
    try:
        item = json.loads(line)
        name = check_name(item["name"])
        return {"name": name, "value": metric_value(name, item["value"]),
                "index": validate_index(name, item["index"]), "time": float(item["time"])}
    except (ValueError, KeyError, TypeError):
        return None

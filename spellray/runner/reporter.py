"""Status reports from the runner to the server, in order, retried while the server is down.

A background thread delivers them so the run never waits on the server; the run's result also
goes to storage, so a report that never arrives loses nothing (the reconciler reads it there).

Hand-written over the standard library's http.client rather than httpx on purpose: the runner
starts inside every run, and importing httpx (with httpcore, and trio where installed) costs
~250 ms there, more than everything else the runner does for a short run.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from typing import Any
from urllib.parse import urlsplit


class Reporter:
    def __init__(self, server_url: str, token: str, run_id: int) -> None:
        url = urlsplit(server_url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port
        self._path = f"{url.path.rstrip('/')}/api/runs/{run_id}"
        self._headers = {"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"}
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._loop, name="reporter", daemon=True)
        self._thread.start()

    def _connect(self, timeout: float = 5) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=timeout)

    def _request(self, connection: http.client.HTTPConnection, method: str, path: str,
                 body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body) if body is not None else None
        connection.request(method, path, body=payload, headers=self._headers)
        response = connection.getresponse()
        return response.status, response.read()

    def send(self, status: str, reason: str | None = None, exit_code: int | None = None) -> None:
        self._queue.put({"status": status, "reason": reason, "exit_code": exit_code})

    def current_status(self) -> str | None:
        """The server's view of this run's status; "ended" when the server no longer takes
        this run's token (it is revoked when the run ends); None if it cannot be asked."""
        connection = self._connect(timeout=3)
        try:
            code, data = self._request(connection, "GET", self._path)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()
        if code == 401:
            return "ended"
        return json.loads(data)["status"] if code == 200 else None

    def close(self, timeout: float) -> None:
        """Deliver what is queued, giving up after ``timeout`` seconds."""
        self._deadline = time.monotonic() + timeout
        self._queue.put(None)
        self._thread.join(timeout + 1)

    def _loop(self) -> None:
        connection = self._connect()  # kept alive across reports
        while (item := self._queue.get()) is not None:
            connection = self._deliver(connection, item)
        connection.close()

    def _deliver(self, connection: http.client.HTTPConnection,
                 item: dict[str, Any]) -> http.client.HTTPConnection:
        delay = 0.2
        while self._deadline is None or time.monotonic() < self._deadline:
            try:
                code, _ = self._request(connection, "POST", f"{self._path}/status", item)
                # 2xx: delivered. 4xx: final (the run already ended, or the token was revoked
                # because it did); only 5xx and network errors are worth another try.
                if code < 500:
                    return connection
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = self._connect()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        return connection

"""Status reports from the runner to the server, in order, retried while the server is down.

A background thread delivers them so the run never waits on the server; the run's result also
goes to storage, so a report that never arrives loses nothing (the reconciler reads it there).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any


class Reporter:
    def __init__(self, server_url: str, token: str, run_id: int) -> None:
        self._url = f"{server_url.rstrip('/')}/api/runs/{run_id}"
        self._token = token
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._loop, name="reporter", daemon=True)
        self._thread.start()

    def _client(self) -> Any:
        import httpx  # imported off the critical path, in the reporter thread

        return httpx.Client(headers={"Authorization": f"Bearer {self._token}"}, timeout=5)

    def send(self, status: str, reason: str | None = None, exit_code: int | None = None) -> None:
        self._queue.put({"status": status, "reason": reason, "exit_code": exit_code})

    def current_status(self) -> str | None:
        """The server's view of this run's status; "ended" when the server no longer takes
        this run's token (it is revoked when the run ends); None if it cannot be asked."""
        try:
            with self._client() as client:
                response = client.get(self._url, timeout=3)
            if response.status_code == 401:
                return "ended"
            return response.json()["status"] if response.status_code == 200 else None
        except Exception:
            return None

    def close(self, timeout: float) -> None:
        """Deliver what is queued, giving up after ``timeout`` seconds."""
        self._deadline = time.monotonic() + timeout
        self._queue.put(None)
        self._thread.join(timeout + 1)

    def _loop(self) -> None:
        with self._client() as client:
            while (item := self._queue.get()) is not None:
                self._deliver(client, item)

    def _deliver(self, client: Any, item: dict[str, Any]) -> None:
        import httpx

        delay = 0.2
        while self._deadline is None or time.monotonic() < self._deadline:
            try:
                response = client.post(f"{self._url}/status", json=item)
                # 2xx: delivered. 4xx: final (the run already ended, or the token was revoked
                # because it did); only 5xx and network errors are worth another try.
                if response.status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

"""Status reports from the runner to the server, in order, retried while the server is down.

A background thread delivers them so the run never waits on the server; the run's result also
goes to storage, so a report that never arrives loses nothing (the reconciler reads it there).
"""

from __future__ import annotations

import http.client
import json

from spellray.runner.server_api import Outbox, ServerApi


class Reporter:
    def __init__(self, server_url: str, token: str, run_id: int) -> None:
        # Others (metrics, tracking) copy this for a connection of their own.
        self.api = ServerApi(server_url, token, run_id)
        self._outbox = Outbox(self.api.copy(), "/status", name="reporter")

    def send(self, status: str, reason: str | None = None, exit_code: int | None = None) -> None:
        self._outbox.put({"status": status, "reason": reason, "exit_code": exit_code})

    def current_status(self) -> str | None:
        """The server's view of this run's status; "ended" when the server no longer takes
        this run's token (it is revoked when the run ends); None if it cannot be asked."""
        api = self.api.copy()
        try:
            code, data = api.request("GET", "", timeout=3)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            api.close()
        if code == 401:
            return "ended"
        return json.loads(data)["status"] if code == 200 else None

    def close(self, timeout: float) -> None:
        """Deliver what is queued, giving up after ``timeout`` seconds."""
        self._outbox.close(timeout)

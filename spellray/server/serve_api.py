"""The server's only door to Ray Serve: the dashboard's Serve REST API over HTTP (as
ray_jobs.py is for the Jobs API), so the server process never joins the Ray cluster.

Serve's REST API is declarative: one PUT carries every application that should exist, and
Serve deletes (declaratively deployed) applications missing from it. The caller therefore
builds the whole list each time (services/model_server_config.py).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from spellray.cluster.ray_auth import http_headers
from spellray.errors import RayRefused, RayUnavailable

# httpx logs every request at INFO: the reconciler asks Serve every second.
logging.getLogger("httpx").setLevel(logging.WARNING)

# The first PUT starts Serve's controller and proxy, which takes seconds on a loaded machine.
SERVE_REQUEST_TIMEOUT = 120
LOG_REQUEST_TIMEOUT = 30


class ServeApi:
    def __init__(self, address: str) -> None:
        self.address = address.rstrip("/")

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", SERVE_REQUEST_TIMEOUT)
        try:
            return httpx.request(method, f"{self.address}{path}", headers=http_headers(),
                                 **kwargs)
        except httpx.TransportError as exc:
            raise RayUnavailable(f"the Ray cluster at {self.address} is unreachable while "
                                 f"trying to {what} ({type(exc).__name__})") from exc

    def details(self) -> dict[str, Any]:
        """Serve's instance details: http_options, and each application's status, message,
        deployed config and replicas (``applications``: name -> ApplicationDetails)."""
        response = self._request("GET", "/api/serve/applications/", "read Serve's state")
        if response.status_code != 200:
            raise RayRefused(f"Ray Serve answered {response.status_code} when asked for its "
                                f"applications: {response.text[:300]}")
        return response.json()

    def apply(self, config: dict[str, Any]) -> None:
        """PUT the whole declarative config (ServeDeploySchema)."""
        response = self._request("PUT", "/api/serve/applications/", "deploy to Serve",
                                 json=config)
        if response.status_code != 200:
            raise RayRefused(f"Ray Serve refused the model servers' config "
                                f"({response.status_code}): {response.text[:500]}")

    def log_file(self, node_id: str, filename: str, lines: int) -> str:
        """A log file of a node (a replica's), through the dashboard's log API."""
        response = self._request("GET", "/api/v0/logs/file", "read a replica's log",
                                 params={"node_id": node_id, "filename": filename,
                                         "lines": str(lines)}, timeout=LOG_REQUEST_TIMEOUT)
        return response.text if response.status_code == 200 else ""

"""The SDK's workspaces: ``client.workspaces.open("ws", run=...)`` starts Jupyter on the
cluster (or finds it running) and, with ``wait``, returns once it answers through the
server; ``login_url`` is a one-time link that logs a browser into that workspace alone."""

from __future__ import annotations

import time

from spellray.client._http import ResourceGroup
from spellray.errors import SpellrayError
from spellray.schemas import (
    RunRequest,
    Workspace,
    WorkspaceList,
    WorkspaceLogin,
    WorkspaceOptions,
    WorkspaceRequest,
    WorkspaceStatus,
)

WAIT_POLL = 0.1  # a start takes seconds; 10 light requests a second while it does


class WorkspaceFailed(SpellrayError):
    """The workspace ended (failed or stopped) while it was being waited for."""

    code = "workspace_failed"
    http_status = 409


class Workspaces(ResourceGroup):
    def open(self, name: str, run: RunRequest, options: WorkspaceOptions | None = None,
             given: list[str] | None = None) -> Workspace:
        """Start workspace ``name`` (or find it running). ``run``: its machine type,
        mounts, environment and code, as a run's; ``given``: which of those the user set
        (a running workspace with others is refused)."""
        body = WorkspaceRequest(name=name, run=run, options=options or WorkspaceOptions(),
                                given=given or [])
        return Workspace.model_validate(self._api.request(
            "POST", "/api/workspaces", json=body.model_dump(mode="json")))

    def wait(self, name: str, timeout: float = 600,
             on_status: object = None) -> Workspace:
        """Return once workspace ``name`` runs and Jupyter answers through the server
        (``on_status(workspace)`` hears each change); WorkspaceFailed if it ends first."""
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            workspace = self.get(name)
            if workspace.status != seen:
                seen = workspace.status
                if callable(on_status):
                    on_status(workspace)
            if workspace.status in (WorkspaceStatus.stopped, WorkspaceStatus.failed):
                raise WorkspaceFailed(f"workspace {name} {workspace.status.value}: "
                                      f"{workspace.status_reason or 'no reason given'} "
                                      f"(spell logs {workspace.run_id} shows Jupyter's log)")
            if workspace.status == WorkspaceStatus.running:
                return workspace
            if time.monotonic() > deadline:
                raise WorkspaceFailed(f"workspace {name} is still {workspace.status.value} "
                                      f"after {timeout:g} s; spell logs {workspace.run_id}")
            time.sleep(WAIT_POLL)

    def get(self, name: str) -> Workspace:
        return Workspace.model_validate(self._api.request("GET", f"/api/workspaces/{name}"))

    def list(self) -> list[Workspace]:
        return WorkspaceList.model_validate(
            self._api.request("GET", "/api/workspaces")).workspaces

    def stop(self, name: str) -> Workspace:
        """Stop Jupyter; its folder is saved to workspaces/NAME/."""
        return Workspace.model_validate(
            self._api.request("POST", f"/api/workspaces/{name}/stop"))

    def rm(self, name: str) -> None:
        """Remove a stopped workspace's record and its saved folder."""
        self._api.request("DELETE", f"/api/workspaces/{name}")

    def login(self, name: str) -> WorkspaceLogin:
        return WorkspaceLogin.model_validate(
            self._api.request("POST", f"/api/workspaces/{name}/login"))

    def login_url(self, name: str) -> str:
        """The one-time URL (two minutes) that logs a browser into this workspace alone."""
        return self._api.url + self.login(name).login_path

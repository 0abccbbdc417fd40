"""Workspaces (spell jupyter): Jupyter on the cluster, as a run of kind `workspace`."""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum

from pydantic import Field, field_validator

from spellray.schemas.base import Schema
from spellray.schemas.runs import RunRequest

# A workspace's name is a URL path segment (/workspaces/NAME/) and a storage folder.
WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
# Names the front door keeps for itself under /workspaces/.
RESERVED_NAMES = frozenset({"login"})
# Spell's defaults for both idle timeouts, in seconds.
DEFAULT_TIMEOUT_SECONDS = 1800


def validate_workspace_name(name: str) -> str:
    if not WORKSPACE_NAME.match(name) or name.lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} is not a workspace name: use 1-63 letters, digits, - or _, "
                         "starting with a letter or digit (not 'login')")
    return name


class WorkspaceStatus(str, Enum):
    requested = "requested"
    building = "building"
    running = "running"  # Jupyter answers through the proxy
    saving = "saving"
    stopped = "stopped"
    failed = "failed"


class WorkspaceOptions(Schema):
    """How Jupyter runs. In a request, None means "not given": the workspace's stored option
    (or Spell's default) applies."""

    notebook: bool | None = None  # the classic notebook UI instead of JupyterLab
    idle_kernel_timeout: int | None = Field(default=None, ge=0)
    no_activity_timeout: int | None = Field(default=None, ge=0)


class WorkspaceRequest(Schema):
    """`spell jupyter NAME`: start (or open) workspace NAME. ``run`` carries the machine
    type, mounts, environment and code like a run's; ``given``: the run options the user set
    (a running workspace started with other options is refused, not changed)."""

    name: str
    options: WorkspaceOptions = Field(default_factory=WorkspaceOptions)
    run: RunRequest
    given: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_workspace_name(value)


class Workspace(Schema):
    name: str
    status: WorkspaceStatus
    status_reason: str | None = None
    run_id: int  # its current (or last) run
    machine_type: str
    notebook: bool
    idle_kernel_timeout: int
    no_activity_timeout: int
    path: str  # /workspaces/NAME/ on the server: lab/ or tree/ under it opens the UI
    created_at: datetime
    started_at: datetime | None = None
    # Seconds since Jupyter last saw activity (kernels, requests), while it runs.
    idle_seconds: float | None = None
    saved: bool = False  # its folder is in storage (workspaces/NAME/)
    # Options of the current run, as the user gave them, to say what is running.
    options_text: str = ""


class WorkspaceList(Schema):
    workspaces: list[Workspace]


class WorkspaceLogin(Schema):
    """A one-time link (``expires_in`` seconds) that logs a browser into this workspace
    alone and opens its UI."""

    login_path: str
    page: str
    expires_in: int


class WorkspaceAddress(Schema):
    """What the runner reports once Jupyter answers: where the server reaches it (the node's
    private address) and Jupyter's token, which only the server's proxy ever sends."""

    address: str = Field(pattern=r"^http://[^/\s]+:\d+$")
    token: str = Field(min_length=16, max_length=200)

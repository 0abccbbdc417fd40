"""Workspaces (spell jupyter NAME): a name for a run of kind `workspace`, whose runner starts
Jupyter in the run's folder (runner/jupyter.py). Its folder is saved to workspaces/NAME/
when it stops and restored when it starts again; the code seeds it only the first time.
The browser reaches Jupyter through the server alone (server/workspace_gate.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, NotFound
from spellray.schemas import (
    Run,
    RunRequest,
    RunStatus,
    Workspace,
    WorkspaceAddress,
    WorkspaceList,
    WorkspaceLogin,
    WorkspaceOptions,
    WorkspaceRequest,
    WorkspaceStatus,
    validate_workspace_name,
)
from spellray.schemas.workspaces import DEFAULT_TIMEOUT_SECONDS
from spellray.server import db
from spellray.server.browser_sessions import CODE_SECONDS, BrowserSessions
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by, sees
from spellray.server.services.runs import RunService
from spellray.storage.paths import join

PREFIX = "/workspaces"
# Run options a running workspace is compared on when `spell jupyter NAME` gives them again.
COMPARED = ("machine_type", "mounts", "environment", "env", "project")
# How long the server waits for Jupyter's idle clock when listing.
STATUS_TIMEOUT = 1.0

# One `spell jupyter NAME` at a time makes or starts a workspace: the server is one process,
# and a lock is simpler than an insert race between two runs of one name.
_OPENING = threading.Lock()


def workspace_path(name: str) -> str:
    return f"{PREFIX}/{name}/"


def folder_of(name: str) -> str:
    """Where the workspace's folder is saved in storage."""
    return join("workspaces", name)


def _not_found(name: str) -> NotFound:
    return NotFound(f"there is no workspace {name!r}; spell workspaces lists them, "
                    f"spell jupyter {name} makes it")


def status_of(run_status: RunStatus, address: str | None) -> WorkspaceStatus:
    """The one place a workspace's run status becomes the workspace's."""
    if run_status == RunStatus.running:
        return WorkspaceStatus.running if address else WorkspaceStatus.building
    if run_status in (RunStatus.failed, RunStatus.interrupted):
        return WorkspaceStatus.failed
    if run_status.is_terminal:
        return WorkspaceStatus.stopped
    return WorkspaceStatus(run_status.value)  # requested, building, saving


def _options(stored: dict[str, Any]) -> WorkspaceOptions:
    return WorkspaceOptions.model_validate(stored.get("jupyter") or {})


def _options_text(stored: dict[str, Any]) -> str:
    """The options a workspace runs with, as `spell jupyter` flags."""
    opts, run = _options(stored), stored.get("run") or {}
    env = run.get("environment") or {}
    parts = ["--notebook" if opts.notebook else "--lab", f"-t {run.get('machine_type')}",
             f"--idle-kernel-timeout {opts.idle_kernel_timeout}",
             f"--no-activity-timeout {opts.no_activity_timeout}"]
    parts += [f"-m {m['resource']}:{m['path']}" for m in run.get("mounts") or []]
    parts += [f"--pip {p}" for p in env.get("pip") or []]
    parts += [f"--apt {p}" for p in env.get("apt") or []]
    if env.get("docker_image"):
        parts.append(f"--docker-image {env['docker_image']}")
    parts += [f"-e {k}" for k in sorted(run.get("env") or {})]
    return " ".join(parts)


@dataclass(frozen=True)
class Backend:
    """Where the proxy sends a workspace's requests, and Jupyter's token for them."""

    address: str
    token: str


class WorkspaceService:
    def __init__(self, ctx: ServerContext, sessions: BrowserSessions | None = None) -> None:
        self.ctx = ctx
        self.runs = RunService(ctx)
        self.sessions = sessions

    # -- start ----------------------------------------------------------------------------
    def open(self, request: WorkspaceRequest, owner: str = FIRST_ADMIN,
             owners: frozenset[str] | None = None) -> Workspace:
        """Start workspace NAME, or say it runs already (and with which options). A
        stopped one starts again as its owner's, whoever starts it."""
        with _OPENING:
            with self.ctx.sessions() as session:
                found = session.get(db.Workspace, request.name)
                if found is not None and not sees(owners, found.owner):
                    raise Conflict(f"the workspace name {request.name} is another owner's; "
                                   "pick another name")
                if found is not None and found.owner:
                    owner = found.owner
                stored = dict(found.options) if found else None
                run = session.get(db.Run, found.run_id) if found else None
            if found and run and not RunStatus(run.status).is_terminal:
                assert stored is not None
                self._refuse_other_options(request, stored)
                return self.get(request.name)
            options, run_request = self._merged(request, stored)
            if run_request.distributed:
                raise InvalidInput("a workspace runs on one machine: --distributed is for "
                                   "spell run")
            created = self._start(request.name, options, run_request, owner)
            with self.ctx.sessions() as session:
                row = session.get(db.Workspace, request.name)
                saved = {"jupyter": options.model_dump(),
                         "run": run_request.model_dump(mode="json")}
                if row is None:
                    session.add(db.Workspace(name=request.name, run_id=created.id,
                                             options=saved, owner=owner))
                else:
                    row.run_id, row.options = created.id, saved
                    row.address = row.jupyter_token = None
                session.commit()
        return self.get(request.name)

    def _refuse_other_options(self, request: WorkspaceRequest,
                              stored: dict[str, Any]) -> None:
        running = _options(stored)
        given = request.options.model_dump(exclude_none=True)
        differ = [k for k, v in given.items() if getattr(running, k) != v]
        new_run = request.run.model_dump(mode="json")
        old_run = stored.get("run") or {}
        differ += [k for k in request.given if k in COMPARED and new_run.get(k) != old_run.get(k)]
        if differ:
            raise Conflict(f"workspace {request.name} is running with {_options_text(stored)}; "
                           f"to change {', '.join(sorted(differ))}, stop it first "
                           f"(spell workspaces stop {request.name})")

    def _merged(self, request: WorkspaceRequest,
                stored: dict[str, Any] | None) -> tuple[WorkspaceOptions, RunRequest]:
        """A new workspace: the request, Spell's defaults for what it left out. Starting a
        stopped one: its stored options, with what the request gives instead."""
        defaults = {"notebook": False, "idle_kernel_timeout": DEFAULT_TIMEOUT_SECONDS,
                    "no_activity_timeout": DEFAULT_TIMEOUT_SECONDS}
        old = stored.get("jupyter") if stored else None
        options = WorkspaceOptions.model_validate(
            {**defaults, **(old or {}), **request.options.model_dump(exclude_none=True)})
        if stored is None:
            return options, request.run
        run = dict(stored["run"])
        new = request.run.model_dump(mode="json")
        for key in request.given:
            if key in COMPARED:
                run[key] = new[key]
        return options, RunRequest.model_validate(run)

    def _start(self, name: str, options: WorkspaceOptions, request: RunRequest,
               owner: str = FIRST_ADMIN) -> Run:
        saved = self.ctx.storage.exists(folder_of(name))
        command = "jupyter notebook" if options.notebook else "jupyter lab"
        request = request.model_copy(update={
            "command": command, "description": f"workspace {name}", "idempotent": False,
            "timeout_minutes": None, "stop_conditions": [], "tensorboard_dir": None,
            # Later starts restore the saved folder: the code seeds the first only.
            **({"code": None, "git": None} if saved else {})})
        workspace = {"name": name, "base_url": workspace_path(name),
                     "notebook": options.notebook,
                     "idle_kernel_timeout": options.idle_kernel_timeout,
                     "no_activity_timeout": options.no_activity_timeout,
                     "folder": folder_of(name), "restore": saved}
        return self.runs.submit(request, kind="workspace", record_extra={"workspace": workspace},
                                owner=owner)

    # -- read -----------------------------------------------------------------------------
    def get(self, name: str) -> Workspace:
        with self.ctx.sessions() as session:
            return self._schema(session, self._load(session, name))

    def list(self, owners: frozenset[str] | None = None) -> WorkspaceList:
        """The workspaces ``owners`` see (None: everyone's)."""
        with self.ctx.sessions() as session:
            rows = session.scalars(select(db.Workspace).where(
                owned_by(db.Workspace.owner, owners)).order_by(db.Workspace.name)).all()
            return WorkspaceList(workspaces=[self._schema(session, row) for row in rows])

    def _load(self, session: Session, name: str) -> db.Workspace:
        try:
            validate_workspace_name(name)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        row = session.get(db.Workspace, name)
        if row is None:
            raise _not_found(name)
        return row

    def _schema(self, session: Session, row: db.Workspace) -> Workspace:
        run = session.get(db.Run, row.run_id)
        assert run is not None
        status = status_of(RunStatus(run.status), row.address)
        options = _options(row.options)
        idle = None
        if status == WorkspaceStatus.running and row.address and row.jupyter_token:
            idle = _idle_seconds(row.name, Backend(row.address, row.jupyter_token))
        return Workspace(
            name=row.name, status=status, status_reason=run.status_reason, run_id=run.id,
            machine_type=run.machine_type, notebook=bool(options.notebook),
            idle_kernel_timeout=options.idle_kernel_timeout or 0,
            no_activity_timeout=options.no_activity_timeout or 0,
            path=workspace_path(row.name), created_at=row.created_at,
            started_at=run.started_at, idle_seconds=idle,
            saved=self.ctx.storage.exists(folder_of(row.name)),
            options_text=_options_text(row.options))

    def backend(self, name: str) -> Backend | None:
        """Where a running workspace's Jupyter is; None while it is not running."""
        with self.ctx.sessions() as session:
            row = session.get(db.Workspace, name)
            if row is None or not row.address or not row.jupyter_token:
                return None
            status = session.scalar(select(db.Run.status).where(db.Run.id == row.run_id))
            if status != RunStatus.running.value:
                return None
            return Backend(row.address, row.jupyter_token)

    # -- change ---------------------------------------------------------------------------
    def stop(self, name: str) -> Workspace:
        """End Jupyter; the runner saves the folder to workspaces/NAME/, then it is stopped."""
        workspace = self.get(name)
        if workspace.status in (WorkspaceStatus.stopped, WorkspaceStatus.failed):
            raise Conflict(f"workspace {name} is {workspace.status.value} already; "
                           f"spell jupyter {name} starts it")
        self.runs.stop(workspace.run_id)
        return self.get(name)

    def rm(self, name: str) -> None:
        """Remove the workspace's record and its saved folder (its runs stay, hidden)."""
        workspace = self.get(name)
        if workspace.status not in (WorkspaceStatus.stopped, WorkspaceStatus.failed):
            raise Conflict(f"workspace {name} is {workspace.status.value}: stop it first "
                           f"(spell workspaces stop {name})")
        with self.ctx.sessions() as session:
            session.delete(self._load(session, name))
            session.commit()
        if self.ctx.storage.exists(folder_of(name)):
            self.ctx.storage.delete(folder_of(name))
        if self.sessions is not None:
            self.sessions.forget(f"{PREFIX}/{name}")

    def login(self, name: str, user: str | None = None) -> WorkspaceLogin:
        """A one-time link into this workspace alone, opening its UI."""
        assert self.sessions is not None
        workspace = self.get(name)
        page = workspace.path + ("tree" if workspace.notebook else "lab")
        return WorkspaceLogin(
            login_path=self.sessions.login_path(PREFIX, page, scope=f"{PREFIX}/{name}",
                                                user=user),
            page=page, expires_in=CODE_SECONDS)

    def set_address(self, run_id: int, address: WorkspaceAddress) -> None:
        """The runner's report: Jupyter answers at ``address`` (only the current run's)."""
        with self.ctx.sessions() as session:
            row = session.scalar(select(db.Workspace).where(db.Workspace.run_id == run_id))
            if row is None:
                raise NotFound(f"run {run_id} is no workspace's current run")
            row.address, row.jupyter_token = address.address, address.token
            session.commit()


def _idle_seconds(name: str, backend: Backend) -> float | None:
    """Seconds since Jupyter last saw activity, from its own /api/status; None if it does
    not answer now."""
    from datetime import datetime, timezone

    try:
        answer = httpx.get(f"{backend.address}{workspace_path(name)}api/status",
                           headers={"Authorization": f"token {backend.token}"},
                           timeout=STATUS_TIMEOUT, trust_env=False)
        last = answer.json()["last_activity"] if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    if not last:
        return None
    when = datetime.fromisoformat(last.replace("Z", "+00:00"))
    return max(0.0, (datetime.now(timezone.utc) - when).total_seconds())

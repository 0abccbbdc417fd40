"""Workflows: `spell workflow create` makes a manager run (kind "workflow", its own number
= the workflow's id) with the code snapshots its children may name; the rest is runs'."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Conflict, NotFound
from spellray.schemas import (
    GitSource,
    RunStatus,
    Workflow,
    WorkflowList,
    WorkflowRepo,
    WorkflowRequest,
)
from spellray.server import db
from spellray.server.auth import issue_run_token
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by
from spellray.server.services.code import CodeService
from spellray.server.services.runs import RunService, to_schema
from spellray.server.services.workflow_membership import Membership, repos_of
from spellray.storage.git_source import resolve_remote


def _not_found(workflow_id: int) -> NotFound:
    return NotFound(f"there is no workflow {workflow_id}; spell workflow list lists them")


class WorkflowService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.runs = RunService(ctx)

    def create(self, request: WorkflowRequest, owner: str = FIRST_ADMIN) -> Workflow:
        repos = [self._fixed(repo) for repo in request.repos]
        run = request.run.model_copy(update={"commit_label": None, "idempotent": False})
        manager = self.runs.submit(run, Membership(manager=True, local=request.local,
                                                   repos=repos), owner=owner)
        token = None
        if request.local:  # the user's machine runs the manager: it needs the token
            with self.ctx.sessions() as session:
                token = issue_run_token(session, manager.id, workflow_id=manager.id)
                session.commit()
        return self.get(manager.id).model_copy(update={"token": token})

    def _fixed(self, repo: WorkflowRepo) -> WorkflowRepo:
        """Checked now, and a git ref resolved to its commit: the workflow's children run
        on what was there when it was made."""
        if repo.code is not None:
            CodeService(self.ctx).require(repo.code.sha256, f"--repo {repo.label}'s code")
        if repo.git is not None and repo.git.commit is None:
            git = repo.git
            repo = repo.model_copy(update={"git": GitSource(
                url=git.url, ref=git.ref, commit=resolve_remote(git.url, git.ref))})
        return repo

    def _manager(self, session: Session, workflow_id: int) -> db.Run:
        run = session.get(db.Run, workflow_id)
        if run is None or run.kind != "workflow" or (run.spec or {}).get("archived"):
            raise _not_found(workflow_id)
        return run

    def get(self, workflow_id: int) -> Workflow:
        with self.ctx.sessions() as session:
            return self._schema(session, self._manager(session, workflow_id))

    def _schema(self, session: Session, manager: db.Run) -> Workflow:
        children = session.scalars(select(db.Run).where(
            db.Run.workflow_id == manager.id, db.Run.id != manager.id).order_by(db.Run.id))
        return Workflow(
            id=manager.id, status=RunStatus(manager.status), status_reason=manager.status_reason,
            manager_run_id=manager.id, manager=to_schema(manager),
            runs=[to_schema(child) for child in children], repos=repos_of(session, manager.id),
            stop_requested=manager.stop_requested, created_at=manager.created_at,
            ended_at=manager.ended_at)

    def list(self, limit: int = 50, owners: frozenset[str] | None = None) -> WorkflowList:
        """Workflows, newest first; only ``owners``' (None: everyone's)."""
        with self.ctx.sessions() as session:
            query = select(db.Run).where(db.Run.kind == "workflow",
                                         owned_by(db.Run.owner, owners))
            managers = [m for m in session.scalars(query.order_by(db.Run.id.desc()))
                        if not (m.spec or {}).get("archived")]
            total = len(managers)
            if limit > 0:
                managers = managers[:limit]
            return WorkflowList(workflows=[self._schema(session, m) for m in managers],
                                total=total)

    def stop(self, workflow_id: int) -> Workflow:
        """The manager and every active child stop (outputs saved); no new run starts."""
        self.get(workflow_id)
        self.runs.stop(workflow_id)
        return self.get(workflow_id)

    def kill(self, workflow_id: int) -> Workflow:
        """The manager and every active child end now."""
        self.get(workflow_id)
        self.runs.kill(workflow_id)
        return self.get(workflow_id)

    def rm(self, workflow_id: int) -> None:
        """Take an ended workflow off the list (its runs and their outputs stay)."""
        with self.ctx.sessions() as session:
            manager = self._manager(session, workflow_id)
            if not RunStatus(manager.status).is_terminal:
                raise Conflict(f"workflow {workflow_id} is {manager.status}: stop or kill it "
                               f"first (spell workflow stop {workflow_id})")
            manager.spec = {**(manager.spec or {}), "archived": True}
            session.commit()


"""How a run joins a workflow: a manager made by `spell workflow create`, or a child made
with its manager's token (on the snapshot its ``commit_label`` names).

A child's insert and a stop's or kill's cascade (RunService._end) both write the manager's
row in their transaction, so the database puts one after the other: a child made while its
workflow stops is either ended with it or refused. Never one that escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput
from spellray.schemas import (
    ACTIVE_STATUSES,
    CodeRef,
    GitSource,
    RunRequest,
    RunStatus,
    WorkflowRepo,
)
from spellray.server import db
from spellray.server.auth import Principal
from spellray.server.services.run_status import change_status


@dataclass(frozen=True)
class Membership:
    """A new run's place in a workflow. A manager's workflow id is its own number, known
    once its row is made (``workflow_id`` None)."""

    workflow_id: int | None = None
    parent_run_id: int | None = None
    manager: bool = False
    local: bool = False
    repos: list[WorkflowRepo] = field(default_factory=list)


def repos_of(session: Session, workflow_id: int) -> list[WorkflowRepo]:
    rows = session.scalars(select(db.WorkflowRepo).where(
        db.WorkflowRepo.workflow_id == workflow_id).order_by(db.WorkflowRepo.label))
    return [WorkflowRepo(
        label=row.label,
        code=CodeRef(sha256=row.code_sha256, git_commit=row.git_commit)
        if row.code_sha256 else None,
        git=GitSource(url=row.git_url, ref=row.git_ref, commit=row.git_commit)
        if row.git_url else None) for row in rows]


def membership_for(session: Session, principal: Principal,
                   request: RunRequest) -> tuple[Membership | None, RunRequest]:
    """The workflow a run made by ``principal`` joins (None: no workflow), and the request
    with ``commit_label``'s snapshot as its code."""
    label = request.commit_label
    if principal.kind != "workflow":
        if label:
            raise InvalidInput(f"commit_label {label!r} names a snapshot of a workflow "
                               "(spell workflow create --repo LABEL=PATH); use it in a "
                               "workflow's manager")
        return None, request
    workflow_id = principal.workflow_id
    assert workflow_id is not None
    if label:
        repos = {repo.label: repo for repo in repos_of(session, workflow_id)}
        repo = repos.get(label)
        if repo is None:
            known = ", ".join(sorted(repos)) or "none"
            raise InvalidInput(f"unknown commit_label {label!r}: workflow {workflow_id} has "
                               f"{known}; name it at creation: spell workflow create "
                               f"--repo {label}=PATH")
        request = request.model_copy(update={"code": repo.code, "git": repo.git})
    return Membership(workflow_id=workflow_id, parent_run_id=principal.run_id), request


def join_workflow(session: Session, run: db.Run, member: Membership) -> None:
    """Make ``run`` (flushed, not committed) part of its workflow."""
    if member.manager:
        run.workflow_id = run.id
        for repo in member.repos:
            session.add(db.WorkflowRepo(
                workflow_id=run.id, label=repo.label,
                code_sha256=repo.code.sha256 if repo.code else None,
                git_url=repo.git.url if repo.git else None,
                git_ref=repo.git.ref if repo.git else None,
                git_commit=(repo.git.commit if repo.git else repo.code and repo.code.git_commit)))
        if member.local:
            run.spec = {**(run.spec or {}), "local": True}
            change_status(session, run, RunStatus.running,
                          "the manager runs on the user's machine (--local)")
        return
    # Write the manager's row (changing nothing): this waits for a cascade in progress,
    # and matches nothing once the workflow stops or ends.
    taken = session.execute(
        update(db.Run)
        .where(db.Run.id == member.workflow_id, db.Run.stop_requested.is_(None),
               db.Run.status.in_([s.value for s in ACTIVE_STATUSES]))
        .values(stop_requested=None)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise Conflict(f"workflow {member.workflow_id} is stopping or has ended: it starts "
                       "no new runs")
    run.workflow_id = member.workflow_id
    run.parent_run_id = member.parent_run_id
    # A workflow's runs are its owner's, whoever's token made them.
    run.owner = session.scalar(select(db.Run.owner).where(db.Run.id == member.workflow_id))


def reused_runs(session: Session, workflow_id: int) -> list[int]:
    """Runs of earlier workflows this one reused (``idempotent=True``): its steps too."""
    manager = session.get(db.Run, workflow_id)
    return list((manager.spec or {}).get("reused", [])) if manager else []


def share_with_workflow(session: Session, run_id: int, member: Membership) -> None:
    """An ``idempotent`` child found its twin in an earlier workflow: the manager may now
    see it and wait for it, as for a run of its own."""
    manager = session.get(db.Run, member.workflow_id)
    if manager is not None and run_id not in (manager.spec or {}).get("reused", []):
        spec = manager.spec or {}
        manager.spec = {**spec, "reused": [*spec.get("reused", []), run_id]}


def visible_runs(session: Session, principal: Principal) -> ColumnElement[bool]:
    """The runs a (non-admin) token sees: its workflow's and the ones it reused, or its own."""
    if principal.workflow_id is None:
        return db.Run.id == principal.run_id
    return or_(db.Run.workflow_id == principal.workflow_id,
               db.Run.id.in_(reused_runs(session, principal.workflow_id)))

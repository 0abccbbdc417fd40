"""Tokens, their kinds and scopes: the one check every route goes through (404 for what a
token may not see, 403 for what it may not do), and the migration that gave the tokens
made before it their kinds."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from spellray.errors import Forbidden, NotFound, RunNotFound
from spellray.server import db
from spellray.server.auth import (
    ADMIN,
    Scope,
    check_access,
    check_token,
    issue_run_token,
    issue_search_token,
    principal_of,
)
from tests.server.old_db import db_at_revision


def _run(session: Session, workflow_id: int | None = None, kind: str = "run") -> db.Run:
    run = db.Run(command="true", machine_type="CPU", status="running", kind=kind)
    session.add(run)
    session.flush()
    run.workflow_id = run.id if kind == "workflow" else workflow_id
    return run


def _principal(session: Session, token: str):
    return principal_of(check_token(session, f"Bearer {token}"))


def test_each_kind_sees_its_own_and_may_do_what_its_scopes_say(session: Session) -> None:
    manager = _run(session, kind="workflow")
    child = _run(session, workflow_id=manager.id)
    stranger = _run(session)
    workflow = _principal(session, issue_run_token(session, manager.id, manager.id))
    run = _principal(session, issue_run_token(session, child.id, manager.id))
    search = _principal(session, issue_search_token(session, 7))
    session.commit()
    assert (workflow.kind, run.kind, search.kind) == ("workflow", "run", "search")

    for principal, scope in [(workflow, Scope.runs_read), (workflow, Scope.runs_control),
                             (run, Scope.runs_read)]:
        check_access(session, principal, scope, {"run_id": str(child.id)})
    check_access(session, workflow, Scope.runs_report, {"run_id": str(manager.id)})
    check_access(session, search, Scope.search_drive, {"search_id": "7"})
    check_access(session, ADMIN, Scope.admin, {"run_id": str(stranger.id)})

    with pytest.raises(RunNotFound):  # not its workflow's: it is not there for it
        check_access(session, workflow, Scope.runs_read, {"run_id": str(stranger.id)})
    with pytest.raises(RunNotFound):  # a child's token sees its own run only
        check_access(session, run, Scope.runs_read, {"run_id": str(manager.id)})
    with pytest.raises(NotFound):
        check_access(session, search, Scope.search_drive, {"search_id": "8"})
    # A child reads its workflow (client.active_workflow), but neither controls it nor sees
    # another one.
    check_access(session, run, Scope.runs_read, {"workflow_id": str(manager.id)})
    with pytest.raises(Forbidden):
        check_access(session, run, Scope.runs_control, {"workflow_id": str(manager.id)})
    with pytest.raises(NotFound):
        check_access(session, run, Scope.runs_read, {"workflow_id": str(stranger.id)})
    with pytest.raises(Forbidden):  # it sees the child, but only the child reports for it
        check_access(session, workflow, Scope.runs_report, {"run_id": str(child.id)})
    with pytest.raises(Forbidden):
        check_access(session, run, Scope.runs_control, {"run_id": str(child.id)})
    with pytest.raises(Forbidden):
        check_access(session, workflow, Scope.admin, {})
    with pytest.raises(Forbidden):
        check_access(session, search, Scope.runs_create, {})


def test_tokens_made_before_scopes_keep_what_they_could_do(empty_database_url: str) -> None:
    url = empty_database_url
    engine = db_at_revision(url, "0007")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (command, machine_type, spec, status, version, created_at, "
            "kind) VALUES ('true', 'CPU', '{}', 'running', 1, '2024-01-01 00:00:00', 'run')"))
        for name, run_id in [("admin", None), ("run 1", 1), ("search 3", None)]:
            connection.execute(text(
                "INSERT INTO tokens (token_hash, name, run_id, revoked, created_at) VALUES "
                "(:hash, :name, :run_id, false, '2024-01-01 00:00:00')"),
                {"hash": name, "name": name, "run_id": run_id})
    db.migrate(url)
    with db.make_session_factory(engine)() as session:
        tokens = {t.name: principal_of(t) for t in session.query(db.Token)}
    assert tokens["admin"].is_admin
    assert (tokens["run 1"].kind, tokens["run 1"].run_id) == ("run", 1)
    assert Scope.runs_report in tokens["run 1"].scopes
    assert (tokens["search 3"].kind, tokens["search 3"].hyper_search_id) == ("search", 3)

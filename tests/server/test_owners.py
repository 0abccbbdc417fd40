"""Owners and teams on a real DB, SQLite and Postgres alike: the migration gives what was
there to the first admin; a member sees (and auth lets through) their own things and their
teams', nothing of anyone else's; the active owner must be one the user may use; teams and
users share one namespace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from spellray.errors import Conflict, Forbidden, NotFound, RunNotFound
from spellray.schemas import ModelRequest, Mount, UserRequest
from spellray.schemas.users import TeamRequest
from spellray.server import db
from spellray.server.auth import (
    Principal,
    Scope,
    check_access,
    issue_run_token,
    principal_of,
    with_owners,
)
from spellray.server.auth import check_token as token_of
from spellray.server.ownership import seen_by
from spellray.server.services.links import LinkService
from spellray.server.services.models import ModelService
from spellray.server.services.mounts import resolve_mounts
from spellray.server.services.resources import ResourceService
from spellray.server.services.runs import RunService
from spellray.server.services.teams import TeamService
from spellray.server.services.users import UserService
from spellray.settings import Settings
from spellray.storage.store import Storage
from tests.server.conftest import principal_as
from tests.server.old_db import db_at_revision


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Iterator[Any]:
    engine = db.make_engine(database_url)
    storage = Storage(f"file://{tmp_path / 'storage'}", Settings(home=tmp_path))
    yield SimpleNamespace(sessions=db.make_session_factory(engine), storage=storage,
                          wake=threading.Event(), open_uploads=set())
    engine.dispose()


def _run(ctx: Any, owner: str, workflow_id: int | None = None) -> int:
    with ctx.sessions() as session:
        run = db.Run(command=f"echo {owner}", machine_type="CPU", status="running",
                     spec={"local": True}, owner=owner, workflow_id=workflow_id)
        session.add(run)
        session.commit()
        return run.id


def test_the_migration_gives_what_was_there_to_the_first_admin(empty_database_url: str) -> None:
    engine = db_at_revision(empty_database_url, "0013")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (id, kind, command, machine_type, spec, status, created_at, "
            "version) VALUES (7, 'run', 'true', 'CPU', '{}', 'complete', "
            "'2024-01-01 00:00:00', 1)"))
        connection.execute(text("INSERT INTO links (alias, path, created_at) VALUES "
                                "('data', 'uploads/data', '2024-01-01 00:00:00')"))
    db.migrate(empty_database_url)
    with db.make_session_factory(engine)() as session:
        assert session.get(db.Run, 7).owner == "admin"
        assert session.get(db.Link, "data").owner == "admin"
    engine.dispose()


def test_each_member_lists_only_their_own_and_their_teams_runs(ctx: Any, people: Any) -> None:
    mine, vision, bobs = _run(ctx, "alice"), _run(ctx, "vision"), _run(ctx, "bob")
    runs = RunService(ctx)

    def listed(principal: Principal) -> set[int]:
        return {r.id for r in runs.list(0, None, principal).runs}

    assert listed(people.alice) == {mine, vision}
    assert listed(people.carol) == {vision}
    assert listed(people.bob) == {bobs}
    assert listed(people.admin) == {mine, vision, bobs}
    assert runs.list(0, None, people.bob).total == 1  # the count is filtered too


def test_another_owners_thing_is_not_there_for_a_member(ctx: Any, people: Any) -> None:
    """404 for a run, workflow, link or model of another owner (as if it did not exist); an
    admin-only route stays 403 for a member's own things."""
    vision = _run(ctx, "vision")
    ctx.storage.write_bytes("runs/1/model/weights.txt", b"42")
    ModelService(ctx).create(ModelRequest(name="digits", resource="runs/1/model"), "vision")
    LinkService(ctx).create("weights", "runs/1/model", "vision")
    with ctx.sessions() as session:
        for route, params in (("/api/runs/{run_id}/stop", {"run_id": vision}),
                              ("/api/models/{name}", {"name": "digits"}),
                              ("/api/links/{alias}", {"alias": "weights"})):
            check_access(session, people.carol, Scope.runs_control, params, route)
            check_access(session, people.admin, Scope.runs_control, params, route)
            error = RunNotFound if "run_id" in params else NotFound
            with pytest.raises(error, match="there is no"):
                check_access(session, people.bob, Scope.runs_control, params, route)
        with pytest.raises(Forbidden, match="only an admin"):
            check_access(session, people.carol, Scope.admin, {"run_id": vision},
                         "/api/runs/{run_id}")
    assert [m.name for m in ModelService(ctx).list(people.bob.owners)] == []
    assert [m.name for m in ModelService(ctx).list(people.carol.owners)] == ["digits"]
    with pytest.raises(Conflict, match="another owner's"):  # one name, one owner
        ModelService(ctx).create(ModelRequest(name="digits", resource="runs/1/model"), "bob",
                                 people.bob.owners)


def test_a_workflows_runs_and_a_run_tokens_world_are_its_owners(ctx: Any, people: Any) -> None:
    manager = _run(ctx, "vision")
    with ctx.sessions() as session:
        session.get(db.Run, manager).workflow_id = manager
        secret = issue_run_token(session, manager, manager)
        session.commit()
        principal = with_owners(session, principal_of(token_of(session, f"Bearer {secret}")),
                                "bob")  # a run's token ignores the header: its owner wins
    assert (principal.owner, principal.owners) == ("vision", frozenset({"vision"}))


def test_uploads_are_their_owners(ctx: Any, people: Any) -> None:
    def service(principal: Principal) -> ResourceService:
        return ResourceService(ctx, principal.owners, principal.owner or "admin")

    for who, name in ((people.alice, "faces"), (people.bob, "voices")):
        upload = service(who)
        upload.begin_upload(name)
        with upload.open_upload(name, "a.txt") as out:
            out.write(b"x")
        upload.finish_upload(name)
    assert [e.name for e in service(people.alice).ls("uploads").entries] == ["faces"]
    assert [e.name for e in service(people.bob).ls("uploads").entries] == ["voices"]
    assert {e.name for e in service(people.admin).ls("uploads").entries} == {"faces", "voices"}
    with pytest.raises(NotFound, match=r"there is no 'uploads/faces/a\.txt'"):
        service(people.bob).download("uploads/faces/a.txt")
    with pytest.raises(Conflict, match="another owner's"):
        service(people.bob).begin_upload("faces")
    with pytest.raises(NotFound):
        service(people.bob).rm("uploads/faces")


def test_the_active_owner_must_be_one_the_user_may_use(ctx: Any, people: Any) -> None:
    assert principal_as(ctx, "alice", "vision").owner == "vision"
    assert principal_as(ctx, "alice").owner == "alice"
    with pytest.raises(Forbidden, match="alice may not use the owner 'speech'"):
        principal_as(ctx, "alice", "speech")
    with pytest.raises(Forbidden, match="may not use the owner 'bob'"):
        principal_as(ctx, "alice", "bob")
    assert principal_as(ctx, "admin", "speech").owner == "speech"  # an admin may act for anyone
    with pytest.raises(NotFound, match="no user or team 'nobody'"):
        principal_as(ctx, "admin", "nobody")
    owners = TeamService(ctx).owners(principal_as(ctx, "alice", "vision"))
    assert [(o.name, o.kind, o.active) for o in owners] == [
        ("alice", "user", False), ("vision", "team", True)]


def test_teams_and_users_share_one_namespace(ctx: Any, people: Any) -> None:
    teams, users = TeamService(ctx), UserService(ctx)
    with pytest.raises(Conflict, match="the name alice is taken"):
        teams.create(TeamRequest(name="alice"))
    with pytest.raises(Conflict, match="the name vision is taken"):
        teams.create(TeamRequest(name="vision"))
    with pytest.raises(Conflict, match="there is a team vision"):
        users.add(UserRequest(name="vision"))
    with pytest.raises(NotFound, match="no team 'nothing'"):
        teams.add("nothing", "alice")
    with pytest.raises(NotFound, match="no user 'nobody'"):
        teams.add("vision", "nobody")
    teams.add("vision", "alice")  # twice: still one membership
    assert [t.members for t in teams.list(people.alice)] == [["alice", "carol"]]
    assert [t.name for t in teams.list(people.admin)] == ["speech", "vision"]


def test_a_run_mounts_only_what_its_owner_sees(ctx: Any, people: Any) -> None:
    bobs = _run(ctx, "bob")
    ctx.storage.write_bytes(f"runs/{bobs}/out.txt", b"x")
    mounts = [Mount(resource=f"runs/{bobs}", path="data")]
    with ctx.sessions() as session:
        assert resolve_mounts(session, ctx.storage, mounts, seen_by(session, "bob"))
        assert resolve_mounts(session, ctx.storage, mounts, seen_by(session, "admin"))
        for owner in ("alice", "vision"):  # as if it were not there
            with pytest.raises(NotFound, match=f"cannot mount runs/{bobs}: there is no"):
                resolve_mounts(session, ctx.storage, mounts, seen_by(session, owner))

"""A real state DB for the server's unit tests, on both databases spellray supports: the
Alembic migrations on a SQLite file, and on a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.schemas import UserRequest
from spellray.schemas.users import TeamRequest
from spellray.server import db
from spellray.server.auth import Principal, issue_user_token, principal_of, with_owners
from spellray.server.auth import check_token as token_of
from spellray.server.services.teams import TeamService
from spellray.server.services.users import UserService
from tests.postgres import Postgres

DATABASES = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_template(postgres: Postgres) -> str:
    """A database the real migrations brought to head once; each test gets a copy of it
    (CREATE DATABASE ... TEMPLATE copies files: much faster than migrating every time)."""
    url = postgres.database()
    db.migrate(url)  # alembic disposes its engine: a template must have no connections
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state DB with nothing in it yet, not even a schema (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    url = postgres.database()
    yield url
    postgres.drop(url)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty state DB's URL: a SQLite file, or a database on the session's
    PostgreSQL server (dropped after the test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        db.migrate(url)  # the real Alembic migration on a real SQLite file
        yield url
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    url = postgres.database(template=request.getfixturevalue("postgres_template"))
    yield url
    postgres.drop(url)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = db.make_engine(database_url)
    sessions = db.make_session_factory(engine)
    with sessions() as s:
        yield s
    engine.dispose()  # Postgres: no connection left behind to the dropped database


def principal_as(ctx: Any, name: str, owner: str | None = None) -> Principal:
    """The Principal a request with ``name``'s session token (and X-Spellray-Owner) gets."""
    with ctx.sessions() as session:
        user = session.scalar(select(db.User).where(db.User.name == name))
        secret = issue_user_token(session, user, "session", "test")
        session.commit()
        return with_owners(session, principal_of(token_of(session, f"Bearer {secret}")), owner)


@pytest.fixture
def people(ctx: Any) -> Any:
    """alice and carol in team vision, bob in team speech."""
    users, teams = UserService(ctx), TeamService(ctx)
    for name in ("alice", "bob", "carol"):
        users.add(UserRequest(name=name))
    teams.create(TeamRequest(name="vision"))
    teams.create(TeamRequest(name="speech"))
    teams.add("vision", "alice")
    teams.add("vision", "carol")
    teams.add("speech", "bob")
    return SimpleNamespace(alice=principal_as(ctx, "alice"), bob=principal_as(ctx, "bob"),
                           carol=principal_as(ctx, "carol"), admin=principal_as(ctx, "admin"))

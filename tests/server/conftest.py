"""A real state DB for the server's unit tests, on both databases spellray supports: the
Alembic migrations on a SQLite file, and on a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from spellray.server import db
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

"""A real state DB for the server's unit tests: the Alembic migrations on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from spellray.server import db


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.migrate(url)  # the real Alembic migration on a real SQLite file
    sessions = db.make_session_factory(db.make_engine(url))
    with sessions() as s:
        yield s

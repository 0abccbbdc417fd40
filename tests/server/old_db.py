"""A state DB as an older server left it: migrated up to one revision, for tests that put
rows in it and then run the newer migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from spellray.server import db


def db_at_revision(url: str, revision: str) -> Engine:
    """An engine on the empty DB at ``url``, migrated up to ``revision``."""
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, revision)
    return db.make_engine(url)

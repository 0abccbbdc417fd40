"""A state DB as an older server left it: migrated up to one revision, for tests that put
rows in it and then run the newer migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from spellray.server import db


def db_at_revision(folder: Path, revision: str) -> tuple[str, Engine]:
    """The URL and an engine of a new SQLite DB in ``folder`` migrated up to ``revision``."""
    url = f"sqlite:///{folder / 'state.db'}"
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, revision)
    return url, db.make_engine(url)

"""Run numbers: dense (1, 2, 3, ... with no hole) and never handed out twice, on every DB.

A run's number is its primary key, and users see it (`spell ps`, `runs/<number>/`), so a
hole looks like a lost run. How each database gives one:

- SQLite: AUTOINCREMENT, as the table says. SQLite has one writer at a time, and the insert
  runs while holding the write lock; the counter (sqlite_sequence) is an ordinary table, so
  a rolled-back insert (a lost --idempotent race) takes its number back with it.
- PostgreSQL: a sequence (SERIAL) would leave a hole on every rollback, since ``nextval`` is
  never undone. So the number comes from a counter row in ``meta``, bumped with an UPDATE:
  the row stays locked until the transaction ends, so concurrent submissions take numbers
  one after another, and a rollback undoes the bump. The lock is held only from the run's
  insert to its commit (a few statements), so submissions queue for milliseconds.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

COUNTER_KEY = "last_run_number"

# GREATEST(..., max(id)): a DB whose runs were numbered before the counter existed (or by
# hand) starts after its newest run; after that the counter alone decides.
_BUMP = text(
    "UPDATE meta SET value = CAST(GREATEST(CAST(value AS BIGINT), "
    "(SELECT COALESCE(MAX(id), 0) FROM runs)) + 1 AS TEXT) "
    "WHERE key = :key RETURNING CAST(value AS BIGINT)")
# Made once, by whichever submission comes first; a concurrent one waits for its commit.
_CREATE = text(
    "INSERT INTO meta (key, value) SELECT :key, CAST(COALESCE(MAX(id), 0) AS TEXT) FROM runs "
    "ON CONFLICT (key) DO NOTHING")


def next_run_number(connection: Connection) -> int | None:
    """The number for a run about to be inserted on ``connection`` (its transaction holds
    the counter until it ends); None on SQLite, whose AUTOINCREMENT is dense already (and
    on databases spellray does not support, which keep their own autoincrement)."""
    if connection.dialect.name != "postgresql":
        return None
    number = connection.execute(_BUMP, {"key": COUNTER_KEY}).scalar()
    if number is None:  # no counter yet
        connection.execute(_CREATE, {"key": COUNTER_KEY})
        number = connection.execute(_BUMP, {"key": COUNTER_KEY}).scalar_one()
    return int(number)

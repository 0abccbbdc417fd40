"""Migrations on SQLite and Postgres: from empty to head, the same schema on both and the
models' own; and on a DB that has rows already, as an upgraded server's has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from spellray.server import db
from tests.postgres import Postgres
from tests.server.old_db import db_at_revision


def _schema(engine: Engine) -> dict[str, Any]:
    """Each table's columns (name, nullable, type family), key and indexes, comparable
    across databases."""
    found = inspect(engine)
    return {
        table: {
            "columns": sorted((c["name"], c["nullable"], c["type"]._type_affinity.__name__)
                              for c in found.get_columns(table)),
            "key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in found.get_indexes(table)
                              # Postgres lists a unique constraint's own index too
                              if not i.get("duplicates_constraint")),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
        for table in found.get_table_names() if table != "alembic_version"
    }


def _against_models(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), db.Base.metadata)


def test_sqlite_and_postgres_get_the_same_schema_the_models_describe(
        tmp_path: Path, postgres: Postgres) -> None:
    sqlite_url, postgres_url = f"sqlite:///{tmp_path / 'state.db'}", postgres.database()
    engines = []
    try:
        for url in (sqlite_url, postgres_url):
            db.migrate(url)
            engines.append(db.make_engine(url))
        on_sqlite, on_postgres = (_schema(e) for e in engines)
        assert on_postgres == on_sqlite
        assert {"runs", "run_events", "tokens", "meta", "workspaces"} <= set(on_sqlite)
        for engine in engines:
            # The known differences: 0008 adds runs.workflow_id and 0013 tokens.user_id
            # without their foreign keys (SQLite cannot add one in place; the ORM's is
            # enough, says 0008).
            assert sorted((d[0], d[1].table.name, [c.name for c in d[1].columns])
                          for d in _against_models(engine)) == [
                ("add_fk", "runs", ["workflow_id"]), ("add_fk", "tokens", ["user_id"])]
    finally:
        for engine in engines:
            engine.dispose()
        postgres.drop(postgres_url)


def test_every_migration_goes_down_and_up_again(empty_database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", empty_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    engine = db.make_engine(empty_database_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(config, "head")


def test_existing_searches_and_servers_start_their_history_with_their_status(
        empty_database_url: str) -> None:
    url = empty_database_url
    engine = db_at_revision(url, "0006")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO hyper_searches (kind, status, status_reason, spec, archived, "
            "created_at) VALUES ('grid', 'failed', 'its Ray job vanished', '{}', false, "
            "'2024-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO model_servers (name, model_name, model_version, options, status, "
            "token, token_hash, public, created_at, updated_at) VALUES ('digits', 'digits', "
            "'v1', '{}', 'running', 't', 'h', false, '2024-01-01 00:00:00', "
            "'2024-01-02 00:00:00')"))
    db.migrate(url)
    with db.make_session_factory(engine)() as session:
        search = session.get(db.HyperSearch, 1)
        server = session.get(db.ModelServer, 1)
        assert [(e.status, e.reason) for e in search.events] == [
            ("failed", "its Ray job vanished")]
        assert [(e.status, e.at) for e in server.events] == [("running", server.updated_at)]


def test_a_servers_answer_deadline_keeps_its_meaning(empty_database_url: str) -> None:
    """Before 0010 `--request-timeout` was the answer deadline; it is now Spell's batch wait."""
    url = empty_database_url
    engine = db_at_revision(url, "0007")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO model_servers (name, model_name, model_version, options, status, "
            "token, token_hash, public, created_at, updated_at) VALUES ('slow', 'm', 'v1', "
            "'{\"request_timeout_ms\": 1000, \"min_pods\": 2}', 'running', 't', 'h', false, "
            "'2024-01-01 00:00:00', '2024-01-02 00:00:00')"))
    db.migrate(url)
    with db.make_session_factory(engine)() as session:
        server = session.get(db.ModelServer, 1)
        assert server.options == {"answer_timeout_ms": 1000, "min_pods": 2}
        model = db.Model(name="m", version="v1", resource="uploads/m",
                         files=[{"path": "a.h5", "mount_path": "model.h5"}])
        session.add(model)
        session.commit()
        assert session.get(db.Model, model.id).files[0]["mount_path"] == "model.h5"


def _fail_at(monkeypatch: Any, operation: str, when: Any) -> list[tuple]:
    """Make Alembic's ``operation`` raise, as a kill would end it, on the call whose
    arguments ``when`` accepts; the calls made, in order."""
    from alembic.operations import Operations

    real = getattr(Operations, operation)
    calls: list[tuple] = []

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if when(args):
            raise RuntimeError("ended half-way")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Operations, operation, failing)
    return calls


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_a_first_migration_ended_half_way_leaves_no_schema(
        tmp_path: Path, monkeypatch: Any) -> None:
    """On SQLite too, the migrations are one transaction: a server killed while making its
    new DB leaves none of it, and the next start makes it whole."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    calls = _fail_at(monkeypatch, "create_table", lambda args: args[0] == "tokens")
    with pytest.raises(RuntimeError, match="ended half-way"):
        db.migrate(url)
    assert len(calls) > 1  # tables were made before the failing one
    engine = db.make_engine(url)
    try:
        assert inspect(engine).get_table_names() == []
        monkeypatch.undo()
        db.migrate(url)
        assert {"runs", "tokens", "projects"} <= set(inspect(engine).get_table_names())
        assert _revision(engine) == "0017"
        straight = f"sqlite:///{tmp_path / 'straight.db'}"
        db.migrate(straight)
        made_straight = db.make_engine(straight)
        try:  # the same schema as a start that was never interrupted
            assert _schema(engine) == _schema(made_straight)
        finally:
            made_straight.dispose()
    finally:
        engine.dispose()


def test_an_upgrade_ended_half_way_keeps_the_old_schema_and_rows(
        tmp_path: Path, monkeypatch: Any) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = db_at_revision(url, "0014")
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO meta (key, value) VALUES ('kept', 'yes')"))
        # 0015 runs whole, then 0016 fails after it made a table and an index
        _fail_at(monkeypatch, "add_column", lambda args: args[1].name == "archived_at")
        with pytest.raises(RuntimeError, match="ended half-way"):
            db.migrate(url)
        found = inspect(engine)
        assert _revision(engine) == "0014"
        assert not {"ssh_keys", "projects"} & set(found.get_table_names())
        assert "project_id" not in {c["name"] for c in found.get_columns("runs")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT value FROM meta WHERE key = 'kept'")
                                      ).scalar_one() == "yes"
        monkeypatch.undo()
        db.migrate(url)
        assert _revision(engine) == "0017"
        assert "archived_at" in {c["name"] for c in inspect(engine).get_columns("runs")}
    finally:
        engine.dispose()

"""Migrations on a DB that has rows already, as an upgraded server's has."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from spellray.server import db
from tests.server.old_db import db_at_revision


def test_existing_searches_and_servers_start_their_history_with_their_status(
        tmp_path: Path) -> None:
    url, engine = db_at_revision(tmp_path, "0006")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO hyper_searches (kind, status, status_reason, spec, archived, "
            "created_at) VALUES ('grid', 'failed', 'its Ray job vanished', '{}', 0, "
            "'2024-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO model_servers (name, model_name, model_version, options, status, "
            "token, token_hash, public, created_at, updated_at) VALUES ('digits', 'digits', "
            "'v1', '{}', 'running', 't', 'h', 0, '2024-01-01 00:00:00', "
            "'2024-01-02 00:00:00')"))
    db.migrate(url)
    with db.make_session_factory(engine)() as session:
        search = session.get(db.HyperSearch, 1)
        server = session.get(db.ModelServer, 1)
        assert [(e.status, e.reason) for e in search.events] == [
            ("failed", "its Ray job vanished")]
        assert [(e.status, e.at) for e in server.events] == [("running", server.updated_at)]


def test_a_servers_answer_deadline_keeps_its_meaning(tmp_path: Path) -> None:
    """Before 0010 `--request-timeout` was the answer deadline; it is now Spell's batch wait."""
    url, engine = db_at_revision(tmp_path, "0007")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO model_servers (name, model_name, model_version, options, status, "
            "token, token_hash, public, created_at, updated_at) VALUES ('slow', 'm', 'v1', "
            "'{\"request_timeout_ms\": 1000, \"min_pods\": 2}', 'running', 't', 'h', 0, "
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

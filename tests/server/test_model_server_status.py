from __future__ import annotations

import pytest

from spellray.errors import Conflict
from spellray.schemas import ModelServerStatus as S
from spellray.server import db
from spellray.server.services.model_server_status import (
    ALLOWED,
    SERVE_STATUS,
    change_model_server_status,
)


def _server(session, status: S = S.deploying) -> db.ModelServer:
    server = db.ModelServer(name="digits", model_name="digits", model_version="v1",
                            status=status.value, token="t", token_hash="h")
    session.add(server)
    session.commit()
    return server


def test_a_server_deploys_fails_and_is_started_again_with_history(session) -> None:
    server = _server(session)
    assert change_model_server_status(session, server, S.running)
    assert not change_model_server_status(session, server, S.running)  # nothing new
    assert change_model_server_status(session, server, S.failed, "ImportError: no torch")
    assert change_model_server_status(session, server, S.failed, "Ray is unreachable")
    assert change_model_server_status(session, server, S.deploying)  # spell server start
    session.commit()
    assert server.status == "deploying" and server.status_reason is None
    assert [(e.status, e.reason) for e in server.events] == [
        ("running", None), ("failed", "ImportError: no torch"),
        ("failed", "Ray is unreachable"), ("deploying", None)]


def test_a_stopped_server_is_started_again(session) -> None:
    server = _server(session, S.running)
    assert change_model_server_status(session, server, S.stopped, "stopped by user")
    assert change_model_server_status(session, server, S.deploying)
    assert server.status == "deploying"


@pytest.mark.parametrize(("current", "status"), [
    (S.stopped, S.running), (S.stopped, S.unhealthy), (S.failed, S.running),
    (S.failed, S.unhealthy),
])
def test_moves_not_allowed_are_refused(session, current: S, status: S) -> None:
    server = _server(session, current)
    with pytest.raises(Conflict, match=f"cannot become {status.value}"):
        change_model_server_status(session, server, status)
    assert server.status == current.value and not server.events


def test_every_status_has_its_moves_and_serve_maps_onto_them() -> None:
    assert set(ALLOWED) == set(S)
    assert all(status not in moves for status, moves in ALLOWED.items())
    assert set(SERVE_STATUS.values()) <= set(S)


def test_history_goes_with_the_server(session) -> None:
    server = _server(session)
    change_model_server_status(session, server, S.running)
    session.commit()
    session.delete(server)
    session.commit()
    assert session.query(db.ModelServerEvent).count() == 0

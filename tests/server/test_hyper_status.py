from __future__ import annotations

import pytest
from sqlalchemy import select

from spellray.errors import Conflict
from spellray.schemas import SearchStatus
from spellray.server import db
from spellray.server.auth import hash_token, issue_search_token
from spellray.server.job_status import map_search_job_status
from spellray.server.services.hyper_status import ALLOWED, change_search_status


def _search(session) -> db.HyperSearch:
    search = db.HyperSearch(kind="grid", status="running", spec={})
    session.add(search)
    session.commit()
    return search


def test_a_search_stops_then_ends_and_records_history(session) -> None:
    search = _search(session)
    assert change_search_status(session, search, SearchStatus.stopping)
    assert not change_search_status(session, search, SearchStatus.stopping)  # no-op
    assert change_search_status(session, search, SearchStatus.stopped, "stopped by user")
    session.commit()
    assert search.status == "stopped" and search.status_reason == "stopped by user"
    assert search.ended_at is not None
    assert [(e.status, e.reason) for e in search.events] == [
        ("stopping", None), ("stopped", "stopped by user")]


def test_an_ended_search_never_changes(session) -> None:
    search = _search(session)
    change_search_status(session, search, SearchStatus.killed, "killed by user")
    for status in (SearchStatus.running, SearchStatus.stopping, SearchStatus.complete,
                   SearchStatus.failed):
        with pytest.raises(Conflict, match="already killed"):
            change_search_status(session, search, status)
    assert not change_search_status(session, search, SearchStatus.killed)  # same: no-op
    assert search.status == "killed" and search.status_reason == "killed by user"


def test_a_stop_is_never_taken_back(session) -> None:
    search = _search(session)
    change_search_status(session, search, SearchStatus.stopping)
    with pytest.raises(Conflict, match="cannot become running"):
        change_search_status(session, search, SearchStatus.running)


def test_every_status_has_its_moves() -> None:
    assert set(ALLOWED) == set(SearchStatus)
    assert all(not moves for status, moves in ALLOWED.items() if status.is_terminal)


def test_the_search_token_is_revoked_when_the_search_ends(session) -> None:
    search = _search(session)
    token = issue_search_token(session, search.id)
    session.commit()
    change_search_status(session, search, SearchStatus.complete)
    session.commit()
    row = session.scalar(select(db.Token).where(db.Token.token_hash == hash_token(token)))
    assert row.revoked


@pytest.mark.parametrize(("ray", "current", "expected"), [
    ("PENDING", SearchStatus.running, None), ("RUNNING", SearchStatus.stopping, None),
    ("SUCCEEDED", SearchStatus.running, SearchStatus.failed),
    ("FAILED", SearchStatus.running, SearchStatus.failed),
    ("STOPPED", SearchStatus.running, SearchStatus.failed),
    ("SUCCEEDED", SearchStatus.stopping, SearchStatus.stopped),
    ("STOPPED", SearchStatus.stopping, SearchStatus.stopped),
])
def test_driver_job_status_mapping(ray: str, current: SearchStatus,
                                   expected: SearchStatus | None) -> None:
    assert map_search_job_status(ray, current) == expected


class _NoStorage:
    def read_bytes(self, path: str) -> bytes:
        from spellray.errors import NotFound

        raise NotFound(f"no {path}")


@pytest.mark.parametrize(("search_status", "expected"), [
    ("killed", ("killed", "its search was killed")),
    ("complete", ("interrupted", "its search's driver ended before the trial did")),
])
def test_a_trial_its_driver_left_behind_ends_as_its_search_did(
        session, search_status: str, expected: tuple[str, str]) -> None:
    """`spell hyper kill` kills the trials it finds; one the driver made meanwhile is
    found by the reconciler once the driver's job has stopped, and is killed too."""
    from types import SimpleNamespace

    from spellray.server.reconcile.runs import _reconcile_run

    search = _search(session)
    search.status = search_status
    trial = db.Run(kind="trial", command="python train.py", machine_type="CPU",
                   status="running", spec={}, hyper_search_id=search.id,
                   ray_submission_id="search-driver")
    session.add(trial)
    session.commit()
    ended_driver = SimpleNamespace(status=SimpleNamespace(value="STOPPED"), message="",
                                   driver_node_id=None)
    _reconcile_run(SimpleNamespace(storage=_NoStorage()), session, trial,
                   {"search-driver": ended_driver})
    session.commit()
    assert (trial.status, trial.status_reason) == expected

from __future__ import annotations

import pytest
from sqlalchemy import select

from spellray.errors import Conflict
from spellray.schemas import RunStatus
from spellray.server import db
from spellray.server.auth import hash_token, issue_run_token
from spellray.server.job_status import map_job_status
from spellray.server.services.run_status import change_status


def _run(session) -> db.Run:
    run = db.Run(command="echo", machine_type="CPU", status="requested", spec={})
    session.add(run)
    session.commit()
    return run


def test_status_moves_forward_and_records_history(session) -> None:
    run = _run(session)
    assert change_status(session, run, RunStatus.running)
    assert not change_status(session, run, RunStatus.building)  # late report: ignored
    assert change_status(session, run, RunStatus.failed, "boom", exit_code=3)
    session.commit()
    assert run.status == "failed" and run.exit_code == 3 and run.ended_at is not None
    assert [e.status for e in run.events] == ["running", "failed"]


def test_terminal_status_is_never_left(session) -> None:
    run = _run(session)
    change_status(session, run, RunStatus.killed, "killed by user")
    for status in (RunStatus.running, RunStatus.complete, RunStatus.failed):
        with pytest.raises(Conflict, match="already killed"):
            change_status(session, run, status)
    assert not change_status(session, run, RunStatus.killed)  # same status: no-op
    assert run.status == "killed"


def test_run_token_is_revoked_when_the_run_ends(session) -> None:
    run = _run(session)
    token = issue_run_token(session, run.id)
    session.commit()
    change_status(session, run, RunStatus.complete)
    session.commit()
    row = session.scalar(select(db.Token).where(db.Token.token_hash == hash_token(token)))
    assert row.revoked


def test_run_numbers_are_never_reused(session) -> None:
    first = _run(session)
    session.delete(first)
    session.commit()
    assert _run(session).id == first.id + 1


@pytest.mark.parametrize(("ray", "stop", "expected"), [
    ("PENDING", None, RunStatus.requested), ("RUNNING", None, RunStatus.building),
    ("SUCCEEDED", None, RunStatus.complete), ("FAILED", None, RunStatus.failed),
    ("STOPPED", "kill", RunStatus.killed), ("STOPPED", "stop", RunStatus.stopped),
    ("STOPPED", None, RunStatus.interrupted),
])
def test_ray_job_status_mapping(ray: str, stop: str | None, expected: RunStatus) -> None:
    assert map_job_status(ray, stop) == expected


def test_a_new_reason_for_the_same_status_is_recorded(session) -> None:
    run = _run(session)
    assert change_status(session, run, RunStatus.building)
    assert change_status(session, run, RunStatus.building, "waiting for 2 x {CPU: 4}")
    assert not change_status(session, run, RunStatus.building, "waiting for 2 x {CPU: 4}")
    assert not change_status(session, run, RunStatus.building)  # no reason: nothing new
    assert run.status_reason == "waiting for 2 x {CPU: 4}"
    assert change_status(session, run, RunStatus.running)
    session.commit()
    assert run.status_reason is None
    assert [(e.status, e.reason) for e in run.events] == [
        ("building", None), ("building", "waiting for 2 x {CPU: 4}"), ("running", None)]

"""The one function that changes a run's status."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from spellray.errors import Conflict
from spellray.schemas import RunStatus
from spellray.server.auth import revoke_run_tokens
from spellray.server.db import QueuedRun, Run, RunEvent, UnfinishedTracking, utcnow

_ORDER = {
    RunStatus.requested: 0,
    RunStatus.building: 1,
    RunStatus.running: 2,
    RunStatus.saving: 3,
}


def change_status(session: Session, run: Run, status: RunStatus, reason: str | None = None,
                  exit_code: int | None = None) -> bool:
    """Move ``run`` to ``status``; return whether it changed.

    A terminal run never changes again (Conflict). An active run never moves backwards, so a
    late or repeated report is ignored rather than undoing progress.
    """
    current = RunStatus(run.status)
    if current.is_terminal:
        if current == status:
            return False
        raise Conflict(f"run {run.id} is already {current.value}; it cannot become {status.value}")
    if status == current and reason and reason != run.status_reason:
        # A new reason for the same status (a distributed run says what it waits for).
        run.status_reason = reason
        session.add(RunEvent(run_id=run.id, status=status.value, reason=reason, at=utcnow()))
        return True
    if not status.is_terminal and _ORDER[status] <= _ORDER[current]:
        return False
    run.status = status.value
    run.status_reason = reason
    if exit_code is not None:
        run.exit_code = exit_code
    now = utcnow()
    if status == RunStatus.running and run.started_at is None:
        run.started_at = now
    if status.is_terminal:
        run.ended_at = now
        revoke_run_tokens(session, run.id)
        dequeue(session, run.id)  # however it ended, it no longer waits for room
        # Its MLflow side is finished after this commits (services/metrics.py
        # finish_tracking); the row says so until then, whatever happens to the server.
        session.add(UnfinishedTracking(run_id=run.id, tried_at=now))
    session.add(RunEvent(run_id=run.id, status=status.value, reason=reason, at=now))
    return True


def dequeue(session: Session, run_id: int) -> bool:
    """Take a run out of spellray's run queue (services/run_queue.py); whether it was queued.
    Here, beside change_status, because a run that ends leaves the queue."""
    return bool(session.execute(delete(QueuedRun).where(QueuedRun.run_id == run_id)).rowcount)

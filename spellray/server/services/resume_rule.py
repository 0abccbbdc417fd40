"""Which interrupted runs the server resumes (services/resume.py), in one place: the
reconciler's pass and the run's ``resume_pending`` (what a waiter waits on) ask the same."""

from __future__ import annotations

from datetime import datetime, timedelta

from spellray.schemas import RunStatus
from spellray.server import db

# How far back a pass looks for interrupted runs not yet resumed (a server down longer than
# this leaves older ones as they are: resuming a day-old run would surprise its owner).
LOOK_BACK = timedelta(hours=1)


def resume_pending(run: db.Run, now: datetime | None = None) -> bool:
    """An interrupted run (not a search's trial, a workflow or a workspace) that asks to be
    resumed and was neither resumed nor refused yet: the next pass resumes it. What a waiter
    (`spell run`, `runs.wait`) waits on before it follows the chain."""
    spec = run.spec or {}
    return (run.status == RunStatus.interrupted.value and run.kind == "run"
            and bool(spec.get("auto_resume")) and not spec.get("resumed_as")
            and not spec.get("resume_refused") and run.ended_at is not None
            and run.ended_at >= (now or db.utcnow()) - LOOK_BACK)

"""`spell run --idempotent`: what makes two runs the same, and the race-free claim.

The claim is a row keyed by the run's identity. Of concurrent identical submissions, each
inserts its run and then the claim; the primary key lets one commit and the rest roll back
(their run rows with them) and retry, which finds the winner's run. It needs no lock beyond
the database's own, so it holds for SQLite and Postgres alike.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spellray.schemas import ACTIVE_STATUSES, Mount, RunStatus
from spellray.server import db

# A run --idempotent may return: one that is still going or that finished well.
REUSABLE = sorted(s.value for s in {*ACTIVE_STATUSES, RunStatus.complete})
# How often a submission that lost a claim race looks again before giving up.
CLAIM_ATTEMPTS = 20


def run_identity(*, code: str | None, command: str, environment_digest: str | None,
                 mounts: list[Mount], params: dict[str, str], machine_type: str,
                 env: dict[str, str], distributed: int | None = None) -> str:
    """sha256 over everything that decides what a run computes (not its labels or
    description). ``code`` is the code package's sha256 or the git commit."""
    text = json.dumps({
        "code": code, "command": command, "environment": environment_digest,
        "mounts": sorted((m.resolved or m.resource, m.path) for m in mounts),
        "params": params, "machine_type": machine_type, "env": env,
        # only when set, so the identities of earlier runs stay as they were
        **({"distributed": distributed} if distributed else {}),
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def reusable_run(session: Session, identity: str) -> db.Run | None:
    """The newest run with this identity that is active or complete."""
    return session.scalars(
        select(db.Run).where(db.Run.identity == identity, db.Run.status.in_(REUSABLE))
        .order_by(db.Run.id.desc()).limit(1)
    ).first()


def claim(session: Session, identity: str, run_id: int) -> bool:
    """Make ``run_id`` (flushed, not committed) the run of ``identity``. False if another
    submission's claim stands: the caller rolls back and looks again. The claim becomes
    final when the caller commits (a lost race fails then, with IntegrityError)."""
    current = session.get(db.IdempotencyClaim, identity)
    if current is None:
        session.add(db.IdempotencyClaim(identity=identity, run_id=run_id))
        return True
    holder = session.get(db.Run, current.run_id)
    if holder is not None and holder.status in REUSABLE:
        return False
    # The claimed run failed or was stopped: take over, unless someone already has.
    taken = session.execute(
        update(db.IdempotencyClaim)
        .where(db.IdempotencyClaim.identity == identity,
               db.IdempotencyClaim.run_id == current.run_id)
        .values(run_id=run_id)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1

"""`spell archive RUN...` and `spell unarchive RUN...`: an archived run leaves `spell ps`
(`--archived` lists them), `spell ls runs/`, link resolution and mounts; its outputs stay in
storage, where `spell cp runs/N/...` still reads them, and `spell info N` still shows it."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, RunNotFound
from spellray.schemas import RunStatus
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ownership import sees


def archived_run(session: Session, path: str) -> int | None:
    """The number of the archived run a storage path is in (runs/N/...), or None."""
    head, _, rest = path.partition("/")
    top = rest.split("/", 1)[0]
    if head != "runs" or not top.isdigit():
        return None
    found = session.scalar(select(db.Run.archived_at).where(db.Run.id == int(top)))
    return int(top) if found is not None else None


def refuse_archived(session: Session, path: str, what: str) -> None:
    """A one-line refusal when ``path`` is in an archived run (``what``: what was asked)."""
    run_id = archived_run(session, path)
    if run_id is not None:
        raise InvalidInput(f"{what}: run {run_id} is archived; spell unarchive {run_id} to "
                           "use it again (spell cp still reads its files)")


def archived_ids(session: Session, run_ids: list[int]) -> set[int]:
    """Which of these runs are archived, one query (a `spell ls runs/` listing's)."""
    if not run_ids:
        return set()
    return set(session.scalars(select(db.Run.id).where(
        db.Run.id.in_(run_ids), db.Run.archived_at.is_not(None))))


def runs_seen(session: Session, run_ids: list[int],
              owners: frozenset[str] | None) -> list[db.Run]:
    """The runs, in the order given (a repeat once), each one ``owners`` see (None: all);
    one they do not see is not there for them (RunNotFound), as anywhere else."""
    wanted = list(dict.fromkeys(run_ids))
    found = {r.id: r for r in session.scalars(select(db.Run).where(db.Run.id.in_(wanted)))}
    for run_id in wanted:
        run = found.get(run_id)
        if run is None or not sees(owners, run.owner):
            raise RunNotFound(f"there is no run {run_id}; spell ps lists the runs")
    return [found[run_id] for run_id in wanted]


def set_archived(ctx: ServerContext, run_ids: list[int], archived: bool,
                 owners: frozenset[str] | None) -> list[int]:
    """Archive (or unarchive) runs the caller sees (``owners``; None: everyone's); all of
    them or none. An active run is not archived: it is still writing its outputs. The runs
    changed (those not already so)."""
    with ctx.sessions() as session:
        runs = runs_seen(session, run_ids, owners)
        for run in runs:
            if archived and not RunStatus(run.status).is_terminal:
                raise Conflict(f"run {run.id} is {run.status}: archive it once it has ended "
                               f"(spell stop {run.id} ends it, saving its outputs)")
        changing = [r.id for r in runs if (r.archived_at is not None) != archived]
        if changing:
            # A plain UPDATE: archiving is no status change (the run's version is left alone).
            session.execute(update(db.Run).where(db.Run.id.in_(changing))
                            .values(archived_at=db.utcnow() if archived else None))
            session.commit()
        return changing

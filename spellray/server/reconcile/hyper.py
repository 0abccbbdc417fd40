"""Searches: one whose driver job ended without reporting (it crashed, or Ray lost it) ends
too, with a reason."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import RayUnavailable, SpellrayError
from spellray.schemas import SearchStatus
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.job_status import map_search_job_status
from spellray.server.reconcile.runs import UNSUBMITTED_GRACE
from spellray.server.services.hyper_status import change_search_status

if TYPE_CHECKING:
    from ray.job_submission import JobDetails

log = logging.getLogger(__name__)

ACTIVE = [s.value for s in SearchStatus if not s.is_terminal]


def reconcile(ctx: ServerContext, jobs: Callable[[], dict[str, JobDetails]]) -> None:
    with ctx.sessions() as session:
        active = list(session.scalars(
            select(db.HyperSearch.id).where(db.HyperSearch.status.in_(ACTIVE))))
    if not active:
        return
    listed = jobs()
    for search_id in active:
        with ctx.sessions() as session:
            try:
                _reconcile_search(ctx, session, session.get(db.HyperSearch, search_id), listed)
                session.commit()
            except RayUnavailable:
                raise
            except SpellrayError as exc:
                # The driver reported how the search ended at the same moment.
                log.info("reconciler: search %s changed concurrently: %s", search_id, exc)
                session.rollback()


def _reconcile_search(ctx: ServerContext, session: Session, search: db.HyperSearch,
                      jobs: dict[str, JobDetails]) -> None:
    if search.ray_submission_id is None:
        if db.utcnow() - search.created_at > UNSUBMITTED_GRACE:
            change_search_status(session, search, SearchStatus.failed, "never submitted to Ray")
        return
    job = jobs.get(search.ray_submission_id) or ctx.ray.job(search.ray_submission_id)
    if job is None:
        change_search_status(session, search, SearchStatus.failed, "its Ray job vanished")
    elif status := map_search_job_status(job.status.value, SearchStatus(search.status)):
        change_search_status(session, search, status, None if status == SearchStatus.stopped
                             else f"its driver ended: {job.message}")

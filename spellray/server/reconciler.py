"""Maps Ray's job states onto runs, so a run ends (with a reason) even when its runner cannot
report: killed runner, vanished Ray job, server down while the run finished."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from spellray.errors import NotFound, RayUnavailable, SpellrayError
from spellray.schemas import ACTIVE_STATUSES, RunStatus, SearchStatus
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.job_status import map_job_status, map_search_job_status
from spellray.server.ray_jobs import environment_failure_reason, is_environment_failure
from spellray.server.services.hyper import ACTIVE as SEARCH_ACTIVE
from spellray.server.services.hyper import end_search
from spellray.server.services.metrics import end_tracking
from spellray.server.services.run_preparation import log_path, record_path
from spellray.server.services.run_status import change_status
from spellray.server.services.servers_status import reconcile_model_servers

if TYPE_CHECKING:
    from ray.job_submission import JobDetails

log = logging.getLogger(__name__)

# A run whose submission never got a Ray job id this long after creation was lost in a crash.
UNSUBMITTED_GRACE = timedelta(seconds=60)


class Reconciler:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
                reconcile_model_servers(self.ctx)
            except RayUnavailable as exc:
                log.warning("reconciler: %s", exc.message)
            except Exception:
                log.exception("reconciler pass failed")
            self._stop.wait(self.ctx.settings.reconcile_interval)

    def _runner_result(self, run_id: int) -> dict | None:
        """What the runner wrote to storage when it finished, if it got that far."""
        try:
            return json.loads(self.ctx.storage.read_bytes(record_path(run_id))).get("result")
        except (NotFound, ValueError):
            return None

    def reconcile_once(self) -> None:
        with self.ctx.sessions() as session:
            active = list(session.scalars(
                select(db.Run.id).where(db.Run.status.in_([s.value for s in ACTIVE_STATUSES]))
            ))
            searches = list(session.scalars(
                select(db.HyperSearch.id).where(db.HyperSearch.status.in_(SEARCH_ACTIVE))))
        if not active and not searches:
            return
        jobs = self.ctx.ray.jobs()
        for search_id in searches:
            with self.ctx.sessions() as session:
                self._reconcile_search(session, session.get(db.HyperSearch, search_id), jobs)
                session.commit()
        for run_id in active:
            with self.ctx.sessions() as session:
                run = session.get(db.Run, run_id)
                try:
                    self._reconcile_run(session, run, jobs)
                    session.commit()
                    if RunStatus(run.status).is_terminal:  # ended by this pass
                        end_tracking(self.ctx, run.mlflow_run_id, run.status)
                except (SpellrayError, StaleDataError) as exc:
                    # The runner reported at the same moment; the next pass sees its result.
                    log.info("reconciler: run %s changed concurrently: %s", run_id, exc)
                    session.rollback()

    def _reconcile_search(self, session: Session, search: db.HyperSearch,
                          jobs: dict[str, JobDetails]) -> None:
        """A search whose driver job ended without reporting (it crashed, or Ray lost it)."""
        if search.ray_submission_id is None:
            if db.utcnow() - search.created_at > UNSUBMITTED_GRACE:
                end_search(session, search, "failed", "never submitted to Ray")
            return
        job = jobs.get(search.ray_submission_id) or self.ctx.ray.job(search.ray_submission_id)
        if job is None:
            end_search(session, search, "failed", "its Ray job vanished")
        elif status := map_search_job_status(job.status.value, SearchStatus(search.status)):
            end_search(session, search, status.value, None if status == SearchStatus.stopped
                       else f"its driver ended: {job.message}")

    def _reconcile_run(self, session: Session, run: db.Run, jobs: dict[str, JobDetails]) -> None:
        if run.ray_submission_id is None:
            if db.utcnow() - run.created_at > UNSUBMITTED_GRACE:
                change_status(session, run, RunStatus.failed,
                              "never submitted to Ray (the server stopped while submitting)")
            return
        # The job list was read before this run's row: a run submitted since is missing from
        # it, so ask Ray about this one job before calling it vanished.
        job = jobs.get(run.ray_submission_id) or self.ctx.ray.job(run.ray_submission_id)
        if job is None:
            change_status(session, run, RunStatus.failed,
                          "its Ray job vanished (was the Ray cluster restarted?)")
            return
        ray_status = job.status.value
        mapped = map_job_status(ray_status, run.stop_requested, job.message)
        if run.kind == "trial" and not mapped.is_terminal:
            return  # the search's driver is alive; the trial's runner reports for itself
        if not mapped.is_terminal:
            change_status(session, run, mapped)
            return
        result = self._runner_result(run.id)
        if result:
            change_status(session, run, RunStatus(result["status"]), result.get("reason"),
                          result.get("exit_code"))
            return
        reason = None
        if mapped == RunStatus.failed and is_environment_failure(job):
            reason = environment_failure_reason(job.message or "")
            self._save_build_log(run.id, job.message or "")
        elif run.kind == "trial":  # its driver ended (or was stopped) while it ran
            reason = "its search's driver ended before the trial did"
            if mapped != RunStatus.failed:
                mapped = RunStatus.interrupted
        elif mapped == RunStatus.failed:
            reason = f"the runner ended without reporting: Ray job {ray_status}: {job.message}"
        change_status(session, run, mapped, reason)

    def _save_build_log(self, run_id: int, message: str) -> None:
        """The runner never started, so it wrote no log: put Ray's account of the failed
        build (with pip's or uv's own output) where `spell logs` looks."""
        path = log_path(run_id)
        if self.ctx.storage.size(path) is None:
            self.ctx.storage.write_bytes(
                path, f"spellray: the environment could not be built:\n{message}\n".encode())


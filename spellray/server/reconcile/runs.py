"""Runs: Ray's job states mapped onto runs, so a run ends (with a reason) even when its
runner cannot report: killed runner, vanished Ray job, server down while the run finished."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from spellray.errors import NotFound, RayUnavailable, SpellrayError
from spellray.schemas import ACTIVE_STATUSES, RunStatus, SearchStatus
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.job_status import map_job_status
from spellray.server.ray_jobs import environment_failure_reason, is_environment_failure
from spellray.server.services.metrics import finish_tracking
from spellray.server.services.resume import resume_interrupted
from spellray.server.services.run_preparation import log_path, record_path
from spellray.server.services.run_status import change_status

if TYPE_CHECKING:
    from ray.job_submission import JobDetails

log = logging.getLogger(__name__)

# A run neither queued nor given a Ray job id this long after creation was lost in a crash.
UNSUBMITTED_GRACE = timedelta(seconds=60)


def reconcile(ctx: ServerContext, jobs: Callable[[], dict[str, JobDetails]],
              dead: Callable[[], set[str]] = set) -> bool:
    """One pass; ``dead``: the nodes Ray's GCS declared dead. Says whether runs are active
    (the reconciler then watches for lost nodes between passes)."""
    with ctx.sessions() as session:
        # Queued runs have no Ray job to follow (reconcile/queue.py submits them).
        active = list(session.scalars(
            select(db.Run.id).where(db.Run.status.in_([s.value for s in ACTIVE_STATUSES]))
            .where(~select(db.QueuedRun.run_id).where(
                db.QueuedRun.run_id == db.Run.id).exists())
        ))
    if active:
        _reconcile_active(ctx, jobs, active, _dead_nodes(dead))
    resume_interrupted(ctx)  # this pass's interrupted runs too
    return bool(active)


def _dead_nodes(dead: Callable[[], set[str]]) -> set[str]:
    """The GCS's dead nodes; none when it cannot say (the job list still tells, later)."""
    try:
        return set(dead())
    except Exception as exc:  # RayUnavailable included: the dashboard may still answer
        log.debug("reconciler: no dead nodes from the GCS: %s", exc)
        return set()


def _reconcile_active(ctx: ServerContext, jobs: Callable[[], dict[str, JobDetails]],
                      active: list[int], dead: set[str]) -> None:
    listed = jobs()
    for run_id in active:
        with ctx.sessions() as session:
            run = session.get(db.Run, run_id)
            try:
                _reconcile_run(ctx, session, run, listed, dead)
                session.commit()
                if RunStatus(run.status).is_terminal:  # ended by this pass
                    finish_tracking(ctx, run.id, run.status)
            except RayUnavailable:
                raise
            except (SpellrayError, StaleDataError) as exc:
                # The runner reported at the same moment; the next pass sees its result.
                log.info("reconciler: run %s changed concurrently: %s", run_id, exc)
                session.rollback()


def _runner_result(ctx: ServerContext, run_id: int) -> dict | None:
    """What the runner wrote to storage when it finished, if it got that far."""
    try:
        return json.loads(ctx.storage.read_bytes(record_path(run_id))).get("result")
    except (NotFound, ValueError):
        return None


def _reconcile_run(ctx: ServerContext, session: Session, run: db.Run,
                   jobs: dict[str, JobDetails], dead: set[str] | None = None) -> None:
    if run.ray_submission_id is None:
        if (run.spec or {}).get("local"):
            return  # a --local workflow manager: the user's machine reports for it
        if db.utcnow() - run.created_at > UNSUBMITTED_GRACE:
            change_status(session, run, RunStatus.failed,
                          "never submitted to Ray (the server stopped while submitting)")
        return
    # The job list was read before this run's row: a run submitted since is missing from
    # it, so ask Ray about this one job before calling it vanished.
    job = jobs.get(run.ray_submission_id) or ctx.ray.job(run.ray_submission_id)
    if job is None:
        change_status(session, run, RunStatus.failed,
                      "its Ray job vanished (was the Ray cluster restarted?)")
        return
    ray_status = job.status.value
    if (lost := _on_dead_node(job, run.machine_type, dead or set())) and run.kind != "trial" \
            and run.stop_requested is None and not _runner_result(ctx, run.id):
        # Its runner's node is gone: said now, not a job-manager ping later (Ray marks the
        # job failed then: a second of the wait before a spot run is resumed). A run being
        # stopped ends as Ray's job list then says (stopped, not resumed).
        change_status(session, run, RunStatus.interrupted, lost)
        return
    mapped = map_job_status(ray_status, run.stop_requested, job.message)
    if run.kind == "trial" and not mapped.is_terminal:
        return  # the search's driver is alive; the trial's runner reports for itself
    if not mapped.is_terminal:
        change_status(session, run, mapped)
        return
    result = _runner_result(ctx, run.id)
    if result:
        change_status(session, run, RunStatus(result["status"]), result.get("reason"),
                      result.get("exit_code"))
        return
    reason = None
    if mapped == RunStatus.failed and is_environment_failure(job):
        reason = environment_failure_reason(job.message or "")
        _save_build_log(ctx, run.id, job.message or "")
    elif run.kind == "trial" and _search_killed(session, run):
        # Made by the driver while `spell hyper kill` was killing the search's trials: it
        # ends as they did.
        mapped, reason = RunStatus.killed, "its search was killed"
    elif run.kind == "trial":  # its driver ended (or was stopped) while it ran
        reason = "its search's driver ended before the trial did"
        if mapped != RunStatus.failed:
            mapped = RunStatus.interrupted
    elif mapped == RunStatus.failed and (died := _node_death(job, run.machine_type)):
        # The machine went (a spot machine taken back, a crash): not the run's fault.
        mapped, reason = RunStatus.interrupted, died
    elif mapped == RunStatus.failed:
        reason = f"the runner ended without reporting: Ray job {ray_status}: {job.message}"
    change_status(session, run, mapped, reason)


def _search_killed(session: Session, run: db.Run) -> bool:
    search = session.get(db.HyperSearch, run.hyper_search_id) if run.hyper_search_id else None
    return search is not None and search.status == SearchStatus.killed.value


def _on_dead_node(job: JobDetails, machine_type: str, dead: set[str]) -> str | None:
    """The reason, when a running job's runner is on a node the GCS declared dead."""
    if job.status.value != "RUNNING" or not job.driver_node_id or job.driver_node_id not in dead:
        return None
    return (f"the {machine_type} machine it ran on (node {job.driver_node_id}) was lost: "
            "Ray's GCS declared the node dead")


def _node_death(job: JobDetails, machine_type: str) -> str | None:
    """One line naming the node and its machine type, when the runner's node died: Ray says
    so at the end of a multi-line dump of its job supervisor actor
    (tests/chaos/test_node_faults.py). The run was on a machine of its own type."""
    message = job.message or ""
    if "node has died" not in message:
        return None
    named = re.search(r"Node Id: ([0-9a-f]+)", message)
    node = named.group(1) if named else job.driver_node_id or "unknown"
    return (f"the {machine_type} machine it ran on (node {node}) was lost: "
            f"{message.strip().splitlines()[-1].strip()}")


def _save_build_log(ctx: ServerContext, run_id: int, message: str) -> None:
    """The runner never started, so it wrote no log: put Ray's account of the failed
    build (with pip's or uv's own output) where `spell logs` looks."""
    path = log_path(run_id)
    if ctx.storage.size(path) is None:
        ctx.storage.write_bytes(
            path, f"spellray: the environment could not be built:\n{message}\n".encode())

"""Spellray's run queue: a submitted run waits here (status `requested`, no Ray job) until
the cluster has room for it, then becomes a Ray job (server/reconcile/queue.py decides
when). A Ray job that waits for resources is a pending supervisor actor that Ray's job
manager fails after RAY_JOB_START_TIMEOUT_SECONDS, and each costs the head a process; a
row here costs nothing.

Order: FIFO per owner, fair (round robin) across owners, per machine type.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from spellray.errors import RayUnavailable
from spellray.schemas import MachineType, RunStatus
from spellray.server import db
from spellray.server.auth import issue_run_token
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.run_status import change_status, dequeue
from spellray.settings import storage_env


def owner_of(run: db.Run) -> str:
    """Whose turn a run takes: its owner's, a user or a team (a workflow's runs and a
    search's trials are their workflow's or search's owner's)."""
    return run.owner or FIRST_ADMIN


def enqueue(session: Session, run: db.Run, held: MachineType, room: MachineType,
            bundles: int, job: dict[str, Any]) -> None:
    """Queue ``run``: its Ray job will hold ``held`` (what its runner reserves), and it
    starts when ``bundles`` bundles of ``room`` fit (a distributed run's ranks, which its
    runner places itself; none for a workflow's manager)."""
    demand = {"CPU": room.num_cpus, "GPU": room.num_gpus, **room.resources}
    session.add(db.QueuedRun(
        run_id=run.id, owner=owner_of(run), machine_type=run.machine_type,
        demand={k: float(v) for k, v in demand.items() if v}, bundles=bundles,
        job={**job, "num_cpus": held.num_cpus, "num_gpus": held.num_gpus,
             "resources": held.resources}))


def fair_order(rows: Iterable[db.QueuedRun]) -> list[db.QueuedRun]:
    """Rows (given oldest first) in the order they start, per machine type: each owner's
    first, then each owner's second, ... owners in the order they first queued."""
    rank: dict[tuple[str, str], int] = defaultdict(int)
    first: dict[tuple[str, str], int] = {}
    keyed = []
    for row in rows:
        key = (row.machine_type, row.owner)
        first.setdefault(key, row.run_id)
        keyed.append(((rank[key], first[key], row.run_id), row))
        rank[key] += 1
    return [row for _, row in sorted(keyed, key=lambda item: item[0])]


def queued(session: Session) -> list[db.QueuedRun]:
    """The whole queue, in start order."""
    return fair_order(session.scalars(select(db.QueuedRun).order_by(db.QueuedRun.run_id)))


def queued_demands(session: Session) -> list[Any]:
    """The queue in start order, as much of each row as deciding needs: not its job, which
    the queue's quick passes (several a second) would decode for nothing."""
    return fair_order(session.execute(select(
        db.QueuedRun.run_id, db.QueuedRun.owner, db.QueuedRun.machine_type,
        db.QueuedRun.demand, db.QueuedRun.bundles).order_by(db.QueuedRun.run_id)))


def waiting(session: Session, run_ids: Iterable[int]) -> dict[int, str]:
    """The one place a queued run's wait is said: "waiting for a T4-spot machine (2 ahead)",
    for the given runs that are queued (one query for all of them). A run is in the queue
    only while no node of its machine type has room for it (reconcile/queue.py starts it
    on the pass after room appears, and a type's runs behind it wait for that room too),
    so it waits for a machine of its type: one the autoscaler makes, or one a run frees."""
    wanted = set(run_ids)
    if not wanted:
        return {}
    rows = session.execute(select(db.QueuedRun.run_id, db.QueuedRun.owner,
                                  db.QueuedRun.machine_type)
                           .order_by(db.QueuedRun.run_id)).all()
    ahead: dict[str, int] = defaultdict(int)
    said = {}
    for row in fair_order(rows):
        if row.run_id in wanted:
            before = ahead[row.machine_type]
            said[row.run_id] = (f"waiting for a {row.machine_type} machine"
                                + (f" ({before} ahead)" if before else ""))
        ahead[row.machine_type] += 1
    return said


def job_env(ctx: ServerContext, user_env: dict[str, str], token: str) -> dict[str, str]:
    """A job's environment, for a run's runner and a search's driver alike."""
    # The server's own stats interval, when it was given one, unless the run sets its own.
    stats = ({"SPELLRAY_STATS_INTERVAL_SECONDS": str(ctx.settings.stats_interval_seconds)}
             if "stats_interval_seconds" in ctx.settings.model_fields_set else {})
    return {
        **stats,
        **user_env,
        **storage_env(ctx.settings),
        "SPELLRAY_SERVER_URL": ctx.advertise_url,
        "SPELLRAY_TOKEN": token,
        # Ray SIGKILLs a stopped job after this long; `spell stop` needs time to save.
        "RAY_JOB_STOP_WAIT_TIME_S": str(ctx.settings.stop_grace_seconds),
        "PYTHONUNBUFFERED": "1",
    }


# The job metadata key that says what a run's job holds once it starts: Ray's job list does
# not say, and the queue must count what pending jobs will take.
HELD = "spellray_holds"


def held(job: dict[str, Any]) -> dict[str, float]:
    shape = {"CPU": job["num_cpus"], "GPU": job["num_gpus"], **job["resources"]}
    return {k: float(v) for k, v in shape.items() if v}


def job_metadata(run: db.Run) -> dict[str, str]:
    """What Ray's dashboard shows of a run's job: which run it is (its entrypoint is the
    runner's, the same for every run)."""
    return {"spellray.run": str(run.id), "spellray.kind": run.kind,
            "spellray.command": run.command[:500],
            "spellray.labels": ",".join(sorted(label.label for label in run.labels)),
            "spellray.owner": owner_of(run)}


def submission_id(ctx: ServerContext, run_id: int) -> str:
    return f"spellray-{ctx.server_id[:12]}-run-{run_id}"


def launch(ctx: ServerContext, run_id: int) -> dict[str, float] | None:
    """Submit a queued run to Ray; say what its job will hold (None: not submitted). The
    token (never stored in the clear) is made now. An unreachable Ray leaves the run queued
    for the next pass; a refusal ends it."""
    with ctx.sessions() as session:
        row, run = session.get(db.QueuedRun, run_id), session.get(db.Run, run_id)
        if row is None or run is None:
            return None  # ended while it waited
        token = issue_run_token(session, run.id, run.workflow_id)
        session.commit()
        job = dict(row.job)
        described = job_metadata(run)
    submission = submission_id(ctx, run_id)
    env_vars = {**job_env(ctx, job["env"], token), "SPELL_TOKEN": token}
    try:
        ctx.ray.submit(submission, job["entrypoint"],
                       {**job["runtime_env"], "env_vars": env_vars},
                       job["num_cpus"], job["num_gpus"], job["resources"],
                       {HELD: json.dumps(held(job)), **described})
    except RayUnavailable:
        raise
    except Exception as exc:  # a job of that id exists: a pass before a crash submitted it
        if "already exists" not in str(exc):
            with ctx.sessions() as session:
                dequeue(session, run_id)
                change_status(session, session.get(db.Run, run_id), RunStatus.failed,
                              f"not submitted: Ray said: {exc}")
                session.commit()
            return None
    with ctx.sessions() as session:
        run = session.get(db.Run, run_id)
        run.ray_submission_id = submission
        dequeue(session, run_id)
        try:
            session.commit()
            ended_meanwhile = run.stop_requested is not None
        except StaleDataError:  # `spell kill` ended it at this moment
            ended_meanwhile = True
    if ended_meanwhile:  # stopped or killed (or its workflow was) while it was submitted
        ctx.ray.stop(submission)
        return None
    return held(job)

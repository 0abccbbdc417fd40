"""The run queue: submit queued runs to Ray while the cluster has room for them, so Ray
never holds more pending jobs than it can start (services/run_queue.py has the order).

Room is the GCS's view of each live node's free resources, less what runs handed to Ray
and not started yet will take (RunQueue). A run needs its bundles to fit (one of its
machine type; `bundles` leaves room for gangs). A run whose runner holds nothing needs
none and goes at once: a workflow's manager (its children queue behind it: it must never
wait for them) and a --distributed run (its ranks' placement group waits in a started
job; services/runs.py says why).
A machine type's queue is FIFO: when its next run does not fit, the ones behind it wait too.

Machine types that can grow (max machines above zero) show their queued runs to the
autoscaler, with the runs they already have, as one standing request (what
`ray.autoscaler.sdk.request_resources` does), so a --min 0 type still gets a machine and
keeps it until its runs end; the request is withdrawn when none is left.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from spellray.errors import RayUnavailable
from spellray.schemas import ACTIVE_STATUSES
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.services import run_queue

if TYPE_CHECKING:
    from ray.job_submission import JobDetails

    from spellray.server.ray_capacity import RayCapacity

log = logging.getLogger(__name__)

# The most bundles one autoscaler request carries; more could never fit a cluster anyway.
MAX_REQUESTED_BUNDLES = 1000


def _take(free: list[dict[str, float]], shape: dict[str, float]) -> bool:
    """Place one bundle on the first node it fits (and take it from that node)."""
    for node in free:
        if all(node.get(k, 0.0) >= v for k, v in shape.items()):
            for k, v in shape.items():
                node[k] = node.get(k, 0.0) - v
            return True
    return False


def _fits(free: list[dict[str, float]], shape: dict[str, float], count: int) -> bool:
    """Whether all ``count`` bundles fit at once; if so they are taken."""
    if not shape or count == 0:
        return True
    trial = [dict(node) for node in free]
    if all(_take(trial, shape) for _ in range(count)):
        free[:] = trial
        return True
    return False


def _job_shape(job: JobDetails) -> dict[str, float]:
    """What a run's job holds once started (its metadata says; other jobs: unknown)."""
    try:
        return json.loads((job.metadata or {}).get(run_queue.HELD, "{}"))
    except ValueError:
        return {}


class RunQueue:
    """Starts queued runs as room frees. Two kinds of pass: the reconciler's full pass (every
    SPELLRAY_RECONCILE_INTERVAL, with Ray's job list), and quick passes (every 0.1 s for a few
    seconds after a run is queued or ends, without it): a run's room frees a moment after
    its end report, when its Ray job exits, and a whole interval of idle slot per run was
    the queue's largest cost. A quick pass reads the DB, the GCS and the status of the few
    jobs it has just started: listing every Ray job each time cost the dashboard more than
    the gap (tried: docs/benchmarks.md).

    Room is the GCS's free resources less what jobs not started yet will take. The queue
    remembers the jobs it started until Ray says they run (their supervisor then holds
    their room in the GCS's view; Ray says PENDING a while longer, so for that while a
    job counts twice and the queue errs on the side of waiting); Ray's pending jobs, on the
    full pass, cover what a restarted server no longer remembers. A run's status cannot
    tell: the reconciler calls a pending job with a runtime_env `building`."""

    def __init__(self, ctx: ServerContext, capacity: RayCapacity) -> None:
        self.ctx, self.capacity = ctx, capacity
        # Run number -> (its Ray job, what the job will hold), from hand-off until it runs.
        self.starting: dict[int, tuple[str, dict[str, float]]] = {}

    def reconcile(self, jobs: Callable[[], dict[str, JobDetails]] | None = None) -> bool:
        """One pass; ``jobs`` (Ray's job list) on full passes only. Says whether runs are
        still queued (quick passes are worth going on with)."""
        ctx, capacity = self.ctx, self.capacity
        with ctx.sessions() as session:
            order = [(r.run_id, r.machine_type, dict(r.demand), r.bundles)
                     for r in run_queue.queued_demands(session)]
        growable = {name for name, t in ctx.machine_types.items() if t.max_machines > 0}
        if not order:
            if growable:
                # What submitted runs hold stays asked for until they end: a job handed to
                # Ray holds nothing until its supervisor starts, and a node that looks idle
                # then is one the autoscaler takes back under the job (seen on a 6 s idle
                # timeout).
                capacity.request(_held(ctx, growable)[:MAX_REQUESTED_BUNDLES])
            return False
        listed = jobs() if jobs else None
        self._forget_started(listed)
        by_node = capacity.free()
        pending = {run_id: shape for run_id, (_, shape) in self.starting.items()}
        for job in (listed or {}).values():
            if job.status.value == "PENDING":  # pending jobs take their room when they start
                pending.setdefault(_job_run(job), _job_shape(job))
        for shape in pending.values():
            _take(list(by_node.values()), shape)
        free = list(by_node.values())
        blocked: set[str] = set()
        asking: list[dict[str, float]] = []
        left = 0
        for run_id, machine_type, demand, bundles in order:
            if demand and (machine_type in blocked or not _fits(free, demand, bundles)):
                blocked.add(machine_type)
                left += 1
                if machine_type in growable:
                    asking += [demand] * bundles
                continue
            try:
                holds = run_queue.launch(ctx, run_id)
            except RayUnavailable:
                raise
            except Exception:  # one run's trouble must not stop the queue
                log.exception("queue: run %s could not be submitted", run_id)
                continue
            if holds:
                self.starting[run_id] = (run_queue.submission_id(ctx, run_id), holds)
        if growable:
            capacity.request((_held(ctx, growable) + asking)[:MAX_REQUESTED_BUNDLES])
        return left > 0

    def _forget_started(self, listed: dict[str, JobDetails] | None) -> None:
        """Drop the jobs Ray runs (or ended): from its list on a full pass, else asked one
        by one (a quick pass has only the few it started)."""
        for run_id, (submission, _) in list(self.starting.items()):
            job = listed.get(submission) if listed is not None else self.ctx.ray.job(submission)
            if job is None or job.status.value != "PENDING":
                del self.starting[run_id]


def _job_run(job: JobDetails) -> int | str:
    """The run a job is for (its metadata), else the job's own id: never a run's number."""
    run = (job.metadata or {}).get("spellray.run", "")
    return int(run) if run.isdigit() else job.submission_id or job.job_id or ""


def _held(ctx: ServerContext, growable: set[str]) -> list[dict[str, float]]:
    """The bundles the growable types' submitted, active runs hold: a request is for
    everything the cluster should fit at once, not on top of what runs now."""
    with ctx.sessions() as session:
        rows = session.execute(select(db.Run.machine_type, db.Run.spec).where(
            db.Run.status.in_([s.value for s in ACTIVE_STATUSES]),
            db.Run.ray_submission_id.is_not(None), db.Run.kind != "workflow",
            db.Run.machine_type.in_(growable))).all()
    held = []
    for machine_type, spec in rows:
        t = ctx.machine_types[machine_type]
        shape = {k: float(v) for k, v in
                 {"CPU": t.num_cpus, "GPU": t.num_gpus, **t.resources}.items() if v}
        held += [shape] * ((spec or {}).get("distributed") or 1)
    return held

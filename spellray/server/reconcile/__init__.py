"""The server's background work: one module per resource (runs, hyper, model_servers), each
called in turn by one thread every SPELLRAY_RECONCILE_INTERVAL seconds. When a run is
queued or ends (ServerContext.wake), the run queue alone is looked at every
QUICK_INTERVAL for QUICK_SECONDS, or until it is empty (queue.RunQueue says why). Ray is
the source of truth for what is alive, the DB the record of what happened."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from spellray.errors import RayUnavailable
from spellray.server.context import ServerContext
from spellray.server.ray_capacity import RayCapacity
from spellray.server.reconcile import hyper, model_servers, queue, runs
from spellray.server.services.metrics import finish_unfinished_tracking

if TYPE_CHECKING:
    from ray.job_submission import JobDetails

log = logging.getLogger(__name__)

# After a wake: how often, and how long, the queue alone is looked at. A run's Ray job
# exits (and its room frees) a few tenths of a second after its end report, here.
QUICK_INTERVAL = 0.1
QUICK_SECONDS = 3.0
# While runs are active: how often the GCS is asked whether a node died (one small call),
# so a lost machine's runs end `interrupted` (and are resumed) on a full pass at once, not
# up to SPELLRAY_RECONCILE_INTERVAL later (docs/spot.md).
NODE_WATCH_INTERVAL = 0.25


class Reconciler:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self.capacity = RayCapacity(ctx.settings)
        self.queue = queue.RunQueue(ctx, self.capacity)
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        # Whether the last full pass saw active runs, and the dead nodes last seen.
        self._runs_active = False
        self._dead_seen: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.ctx.wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        full_at = quick_until = watch_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if self.ctx.wake.is_set():  # a run was queued or ended: the queue may move
                self.ctx.wake.clear()
                quick_until = now + QUICK_SECONDS
            if self._runs_active and now >= watch_at:
                watch_at = now + NODE_WATCH_INTERVAL
                if self._node_died():
                    full_at = now
            try:
                if now >= full_at:
                    full_at = now + self.ctx.settings.reconcile_interval
                    self.reconcile_once()
                elif not self.queue.reconcile():
                    quick_until = 0.0  # nothing is queued: no reason to look often
            except RayUnavailable as exc:
                log.warning("reconciler: %s", exc.message)
            except Exception:  # the thread must outlive any one pass
                log.exception("reconciler pass failed")
            now = time.monotonic()
            quick = QUICK_INTERVAL if now < quick_until else full_at - now
            watch = watch_at - now if self._runs_active else full_at - now
            self.ctx.wake.wait(max(0.0, min(quick, watch, full_at - now)))

    def _node_died(self) -> bool:
        """Whether the GCS declared a node dead since the last look. When it cannot be
        asked, no more looks until a full pass (which says Ray is unreachable) has run: a
        GCS that does not answer must not hold this thread four times a second."""
        try:
            dead = self.capacity.dead()
        except Exception:
            self._runs_active = False
            return False
        died = bool(dead - self._dead_seen)
        self._dead_seen = dead
        return died

    def _runs(self, jobs: Callable[[], dict[str, JobDetails]]) -> None:
        self._runs_active = runs.reconcile(self.ctx, jobs, lambda: self._dead_seen)

    def reconcile_once(self) -> None:
        """One pass over every resource. An unreachable Ray ends the pass (every resource
        would say so); another failure is logged, and the next resource's pass still runs."""
        # Ray's job list: asked once a pass, and only if a search or a run is active.
        jobs = functools.cache(self.ctx.ray.jobs)
        # First: it needs no Ray, and must not wait for one that is down.
        passes = (("ended runs' MLflow side", lambda: finish_unfinished_tracking(self.ctx)),
                  ("searches", lambda: hyper.reconcile(self.ctx, jobs)),
                  ("runs", lambda: self._runs(jobs)),
                  ("model servers", lambda: model_servers.reconcile(self.ctx)),
                  # Last: it needs Ray's GCS too, which the passes above do not (the runs
                  # pass uses the dead nodes the watch last saw).
                  ("the run queue", lambda: self.queue.reconcile(jobs)))
        for resource, reconcile in passes:
            try:
                reconcile()
            except RayUnavailable:
                raise
            except Exception:
                log.exception("reconciler: the pass over %s failed", resource)

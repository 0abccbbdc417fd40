"""The server's background work: one module per resource (runs, hyper, model_servers), each
called in turn by one thread every SPELLRAY_RECONCILE_INTERVAL seconds (sooner when a run
is queued or ends: ServerContext.wake). Ray is the source of
truth for what is alive, the DB the record of what happened."""

from __future__ import annotations

import functools
import logging
import threading

from spellray.errors import RayUnavailable
from spellray.server.context import ServerContext
from spellray.server.ray_capacity import RayCapacity
from spellray.server.reconcile import hyper, model_servers, queue, runs

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self.capacity = RayCapacity(ctx.settings)
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.ctx.wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.ctx.wake.clear()
            try:
                self.reconcile_once()
            except RayUnavailable as exc:
                log.warning("reconciler: %s", exc.message)
            except Exception:  # the thread must outlive any one pass
                log.exception("reconciler pass failed")
            # A new run or a run's end wakes the loop early: the queue may move.
            self.ctx.wake.wait(self.ctx.settings.reconcile_interval)

    def reconcile_once(self) -> None:
        """One pass over every resource. An unreachable Ray ends the pass (every resource
        would say so); another failure is logged, and the next resource's pass still runs."""
        # Ray's job list: asked once a pass, and only if a search or a run is active.
        jobs = functools.cache(self.ctx.ray.jobs)
        passes = (("searches", lambda: hyper.reconcile(self.ctx, jobs)),
                  ("runs", lambda: runs.reconcile(self.ctx, jobs)),
                  ("model servers", lambda: model_servers.reconcile(self.ctx)),
                  # Last: it needs Ray's GCS too, which the passes above do not.
                  ("the run queue", lambda: queue.reconcile(self.ctx, self.capacity, jobs)))
        for resource, reconcile in passes:
            try:
                reconcile()
            except RayUnavailable:
                raise
            except Exception:
                log.exception("reconciler: the pass over %s failed", resource)

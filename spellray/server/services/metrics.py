"""Metrics: each run's MLflow run (made when first needed), its metrics in and out, and
the one-time logins that open MLflow's UI in a browser.

Numbers go to MLflow. What MLflow cannot keep (text values, and numbers under a name MLflow
refuses, such as ``"acc (val)"``) goes to the ``metrics`` table; reading merges the two, so
a run's metrics are one list whichever store holds them."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import delete, select, update

from spellray.errors import NotFound, RunNotFound
from spellray.metrics import mlflow_accepts
from spellray.schemas import (
    MetricBatch,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    MetricValue,
    TrackingInfo,
    UiLogin,
)
from spellray.server import db
from spellray.server.browser_sessions import CODE_SECONDS, BrowserSessions
from spellray.server.context import ServerContext
from spellray.server.services.run_preparation import SPELL_DIR, run_dir
from spellray.server.tracking import PREFIX
from spellray.storage.paths import UNDELIVERED_METRICS_FILE, join

log = logging.getLogger(__name__)
# Points per MLflow request when taking a runner's undelivered metrics (its log-batch limit).
INGEST_BATCH = 1000
# MLflow's prefix for system metrics: the runner's hardware stats (runner/stats_recorder.py).
SYSTEM_PREFIX = "system/"

# This process makes each MLflow run once: the runner's tracking request and its first
# metrics may arrive together.
_creating = threading.Lock()


def experiment_of(ctx: ServerContext, run_id: int) -> str:
    """The MLflow experiment a run's MLflow run is in: its project's, or the uncategorized
    runs' one."""
    with ctx.sessions() as session:
        found = session.scalar(
            select(db.Project.mlflow_experiment_id)
            .join(db.Run, db.Run.project_id == db.Project.id).where(db.Run.id == run_id))
    return found or ctx.tracking.experiment_id


class MetricService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.tracking = ctx.tracking

    def _mlflow_run_id(self, run_id: int) -> str | None:
        with self.ctx.sessions() as session:
            row = session.execute(select(db.Run.id, db.Run.mlflow_run_id)
                                  .where(db.Run.id == run_id)).one_or_none()
        if row is None:
            raise RunNotFound(f"there is no run {run_id}; spell ps lists the runs")
        return row.mlflow_run_id

    def _ensure_mlflow_run(self, run_id: int) -> str:
        if found := self._mlflow_run_id(run_id):
            return found
        with _creating:
            if found := self._mlflow_run_id(run_id):
                return found
            with self.ctx.sessions() as session:
                run = session.get(db.Run, run_id)
                assert run is not None
                kind, command, params = run.kind, run.command, (run.spec or {}).get("params", {})
            mlflow_run_id = self.tracking.create_run(run_id, kind, command, params,
                                                     experiment_of(self.ctx, run_id))
            with self.ctx.sessions() as session:
                # A plain UPDATE, not through the ORM: it leaves the row's version alone, so
                # a status report changing the same run at this moment is not refused.
                session.execute(update(db.Run).where(db.Run.id == run_id)
                                .values(mlflow_run_id=mlflow_run_id))
                session.commit()
            return mlflow_run_id

    def tracking_info(self, run_id: int) -> TrackingInfo:
        """The run's MLflow run, made now if it has none yet."""
        mlflow_run_id = self._ensure_mlflow_run(run_id)
        return TrackingInfo(tracking_uri=self.tracking.tracking_uri,
                            mlflow_run_id=mlflow_run_id,
                            experiment_id=experiment_of(self.ctx, run_id))

    def log(self, run_id: int, batch: MetricBatch) -> None:
        numbers = [p for p in batch.metrics if _in_mlflow(p)]
        others = [p for p in batch.metrics if not _in_mlflow(p)]
        if numbers:
            self.tracking.log_metrics(self._ensure_mlflow_run(run_id), numbers)
        if others:
            self._mlflow_run_id(run_id)  # RunNotFound for an unknown run
            with self.ctx.sessions() as session:
                session.add_all(db.Metric(
                    run_id=run_id, name=p.name, index=p.index, time=p.time,
                    text=p.value if isinstance(p.value, str) else None,
                    number=None if isinstance(p.value, str) else p.value) for p in others)
                session.commit()

    def _own(self, run_id: int, name: str | None = None) -> dict[str, list[MetricValue]]:
        """The run's values in the metrics table, by name, each series in index order."""
        query = select(db.Metric).where(db.Metric.run_id == run_id)
        if name is not None:
            query = query.where(db.Metric.name == name)
        series: dict[str, list[MetricValue]] = {}
        with self.ctx.sessions() as session:
            for row in session.scalars(query.order_by(db.Metric.index, db.Metric.time,
                                                      db.Metric.id)):
                value = row.text if row.text is not None else row.number
                series.setdefault(row.name, []).append(
                    MetricValue(index=row.index, value=value, time=row.time))
        return series

    def list(self, run_id: int) -> list[MetricSummary]:
        """The run's own metrics. Hardware stats (MLflow's ``system/`` metrics, which the
        runner logs) are left out, as MLflow's UI keeps them apart: `spell stats` shows them,
        and ``series`` still returns any one by name."""
        mlflow_run_id = self._mlflow_run_id(run_id)
        found = {s.name: s for s in self.tracking.summaries(mlflow_run_id, SYSTEM_PREFIX)} \
            if mlflow_run_id else {}
        for name in self._own(run_id):
            # Text (or a name MLflow refuses) may share a name with numbers in MLflow.
            found[name] = _summary(name, self.series(run_id, name).values)
        return [found[name] for name in sorted(found)]

    def series(self, run_id: int, name: str) -> MetricSeries:
        mlflow_run_id = self._mlflow_run_id(run_id)
        values = (self.tracking.series(mlflow_run_id, name)
                  if mlflow_run_id and mlflow_accepts(name) else [])
        if own := self._own(run_id, name).get(name):
            values = sorted(values + own, key=lambda v: (v.index, v.time))
        if not values:
            raise NotFound(f"run {run_id} has no metric {name!r} (yet); "
                           f"spell metrics {run_id} lists its metrics")
        return MetricSeries(name=name, values=values)

    def ui_login(self, sessions: BrowserSessions, run_id: int | None) -> UiLogin:
        """A one-time URL path that opens MLflow's UI (at the run's page, given one)."""
        page = ""
        if run_id is not None:
            mlflow_run_id = self._mlflow_run_id(run_id)
            if mlflow_run_id is None:
                raise NotFound(f"run {run_id} has nothing in MLflow yet (no metrics, and its "
                               "command has not started)")
            page = f"#/experiments/{experiment_of(self.ctx, run_id)}/runs/{mlflow_run_id}"
        return UiLogin(login_path=sessions.login_path(PREFIX, f"{PREFIX}/{page}"),
                       expires_in=CODE_SECONDS)


def _in_mlflow(point: MetricPoint) -> bool:
    return not isinstance(point.value, str) and mlflow_accepts(point.name)


def _summary(name: str, values: list[MetricValue]) -> MetricSummary:
    numbers = [v.value for v in values if not isinstance(v.value, str)]
    last = values[-1]
    return MetricSummary(name=name, kind="number" if len(numbers) == len(values) else "text",
                         count=len(values), last=last.value,
                         min=min(numbers) if numbers else None,
                         max=max(numbers) if numbers else None,
                         last_index=last.index, last_time=last.time)


def finish_tracking(ctx: ServerContext, run_id: int, status: str) -> bool:
    """A run ended: take the metrics its runner could not deliver (the server was down past
    its drain; runner/main.py stores them), then end its MLflow run. Whether both are done:
    if so, the run's ``UnfinishedTracking`` row goes; if not (MLflow failed, or not loaded
    yet), it stays for ``finish_unfinished_tracking`` to try again."""
    path = join(run_dir(run_id), SPELL_DIR, UNDELIVERED_METRICS_FILE)
    try:
        try:
            lines = ctx.storage.read_bytes(path).splitlines()
        except NotFound:
            lines = []
        if lines:
            points = [MetricPoint.model_validate_json(line) for line in lines]
            service = MetricService(ctx)
            for start in range(0, len(points), INGEST_BATCH):
                service.log(run_id, MetricBatch(metrics=points[start:start + INGEST_BATCH]))
            ctx.storage.delete(path)  # taken: a second end report must not log them twice
            log.info("run %s: took %d metrics its runner could not deliver", run_id, len(points))
    except Exception:  # storage or MLflow: the file and the row stay, tried again later
        log.exception("could not take run %s's undelivered metrics", run_id)
        return False
    with ctx.sessions() as session:
        mlflow_run_id = session.scalar(select(db.Run.mlflow_run_id).where(db.Run.id == run_id))
    if not end_tracking(ctx, mlflow_run_id, status):
        return False
    with ctx.sessions() as session:
        session.execute(delete(db.UnfinishedTracking)
                        .where(db.UnfinishedTracking.run_id == run_id))
        session.commit()
    return True


# How long an ended run's tracking is left to the call that ended it before the reconciler
# takes it up, and then waits between tries (MLflow may take a while to load, or be down).
TRACKING_RETRY = timedelta(seconds=60)
# Runs a reconciler pass finishes at most: the rest wait for the next passes.
TRACKING_RETRY_BATCH = 50


def finish_unfinished_tracking(ctx: ServerContext) -> int:
    """The reconciler's part: finish the tracking of runs that ended at least
    ``TRACKING_RETRY`` ago and whose ``finish_tracking`` never completed (the server was
    killed between the run's end and it, or MLflow failed); how many were finished. Not
    while MLflow is still loading: that would hold up the reconciler's other passes."""
    if not ctx.tracking.loaded:
        return 0
    due = db.utcnow() - TRACKING_RETRY
    with ctx.sessions() as session:
        rows = session.execute(
            select(db.Run.id, db.Run.status)
            .join(db.UnfinishedTracking, db.UnfinishedTracking.run_id == db.Run.id)
            .where(db.UnfinishedTracking.tried_at <= due)
            .order_by(db.UnfinishedTracking.tried_at).limit(TRACKING_RETRY_BATCH)).all()
        # Tried now: one that fails again waits its turn, not every pass.
        session.execute(update(db.UnfinishedTracking)
                        .where(db.UnfinishedTracking.run_id.in_([r.id for r in rows]))
                        .values(tried_at=db.utcnow()))
        session.commit()
    return sum(finish_tracking(ctx, row.id, row.status) for row in rows)


def end_tracking(ctx: ServerContext, mlflow_run_id: str | None, status: str) -> bool:
    """Mark a run's MLflow run ended as the run did; whether it is (or there is none). Best
    effort: the run's own status is what counts, and MLflow being unavailable must not
    refuse it."""
    if mlflow_run_id is None:
        return True
    try:
        ctx.tracking.end_run(mlflow_run_id, status)
    except Exception:
        log.exception("could not mark MLflow run %s %s", mlflow_run_id, status)
        return False
    return True

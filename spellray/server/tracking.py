"""MLflow in the spellray server: the one module that knows MLflow.

The server owns the tracking store and serves MLflow's own server app (its REST API, the
artifact proxy and the UI: the Flask app `mlflow server` runs) in-process under ``/mlflow``,
the way ``mlflow server --static-prefix /mlflow --serve-artifacts`` would. So one port, one
process, and the same bearer tokens guard it (tracking_gate.py); runs on any node reach it
at ``<server>/mlflow`` with their own token (MLflow clients send MLFLOW_TRACKING_TOKEN as
``Authorization: Bearer``).

- Artifacts are proxied (``mlflow-artifacts:/``, stored under SPELLRAY_MLFLOW_ARTIFACTS_URI):
  a run on another node cannot write to the server's disk, and with a proxy it needs no
  storage credentials, only its token.
- Only the Flask app is mounted, not MLflow's FastAPI wrapper around it: the tracking API,
  the artifact proxy and the UI are all Flask routes; the wrapper adds the AI gateway,
  job execution, the assistant (which runs tools on the host) and OTLP ingestion, none of
  which spellray uses or wants to expose.
- MLflow costs ~4 s to import on a small machine, so nothing here imports it at module
  level; the server loads it in a background thread once it is up (``warm_up``), and
  anything that needs it first waits for that.
- MLflow's server is configured through process environment variables read at import and
  per request; this server process is the only MLflow server in it, so that is safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from spellray.schemas import MetricPoint, MetricSummary, MetricValue
from spellray.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "/mlflow"
# MLflow's limits (mlflow.utils.validation): per log-batch request, and per param value.
METRICS_PER_BATCH = 1000
PARAMS_PER_BATCH = 100
PARAM_VALUE_LENGTH = 6000
TAG_VALUE_LENGTH = 8000
# The experiment's kind, as MLflow 3's UI reads it (its own "set experiment type" writes it).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# What spellray's run statuses are in MLflow's terms.
_MLFLOW_STATUS = {"complete": "FINISHED", "failed": "FAILED", "stopped": "KILLED",
                  "killed": "KILLED", "interrupted": "KILLED"}


def make_new_sqlite_store_whole(store_uri: str) -> None:
    """A new SQLite tracking store, made whole before it is used. MLflow makes its tables by
    Alembic migrations that SQLite cannot hold in one transaction, so a server killed during
    the first set-up (a few seconds after its first start: the chaos test did it) leaves a
    half-made schema that every later start fails on ("duplicate column name: step"), and
    metrics are lost for good. So a new store is made under a name of its own and moved into
    place once complete; a kill leaves only that file, made again next time."""
    if not store_uri.startswith("sqlite:///"):
        return  # PostgreSQL and MySQL hold each migration in a transaction
    path = Path(store_uri.removeprefix("sqlite:///"))
    if path.exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    partial = path.with_name(f"{path.name}.new")
    partial.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{partial}", "mlflow-artifacts:/")
    store.engine.dispose()
    os.replace(partial, path)


class Tracking:
    def __init__(self, settings: Settings, advertise_url: str) -> None:
        self.store_uri = settings.resolved_mlflow_tracking_uri()
        self.artifacts_uri = settings.resolved_mlflow_artifacts_uri()
        self.experiment_name = settings.mlflow_experiment
        self.advertise_url = advertise_url.rstrip("/")
        self._lock = threading.Lock()
        self._store: Any = None
        self._app: Any = None
        self._experiment_id: str | None = None

    @property
    def tracking_uri(self) -> str:
        """What MLflow clients on any node set as MLFLOW_TRACKING_URI."""
        return self.advertise_url + PREFIX

    # -- loading --------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load MLflow in the background, so the first run does not wait for it."""
        def load() -> None:
            started = time.monotonic()
            try:
                self._load()
                log.info("MLflow loaded in %.1f s (store %s)", time.monotonic() - started,
                         self.store_uri)
            except Exception:
                log.exception("loading MLflow failed; it is tried again when needed")

        threading.Thread(target=load, name="mlflow-warm-up", daemon=True).start()

    @property
    def loaded(self) -> bool:
        """Whether MLflow is loaded (a call now would not wait for it to load)."""
        return self._store is not None

    def asgi_app(self) -> Any:
        """MLflow's server app (tracking REST API, artifact proxy, UI), as ASGI."""
        self._load()
        return self._app

    def _load(self) -> Any:
        with self._lock:
            if self._store is None:
                self._configure_environment()
                # _EfficientWSGIMiddleware: what MLflow's own server wraps the same Flask
                # app with (starlette's WSGI bridge, without its quadratic body buffering).
                from mlflow.server import app as flask_app
                from mlflow.server import handlers
                from mlflow.server.fastapi_app import _EfficientWSGIMiddleware

                assert handlers.STATIC_PREFIX_ENV_VAR == "_MLFLOW_STATIC_PREFIX"
                make_new_sqlite_store_whole(self.store_uri)
                # The same store object serves the REST API and spellray's own calls: one
                # engine on the database, one set of MLflow's schema migrations.
                handlers.initialize_backend_stores(self.store_uri,
                                                   default_artifact_root="mlflow-artifacts:/")
                store = handlers._get_tracking_store()
                self._experiment_id = self._ensure_experiment(store, self.experiment_name)
                self._app = _EfficientWSGIMiddleware(flask_app)
                self._store = store
            return self._store

    def _configure_environment(self) -> None:
        """What `mlflow server --backend-store-uri ... --serve-artifacts --artifacts-destination
        ... --static-prefix /mlflow` sets for its workers (mlflow.server.constants); set
        before mlflow.server is imported, which registers its routes with the prefix."""
        os.environ.update({
            "_MLFLOW_SERVER_FILE_STORE": self.store_uri,
            "_MLFLOW_SERVER_REGISTRY_STORE": self.store_uri,
            "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
            "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
            "_MLFLOW_SERVER_ARTIFACT_DESTINATION": self.artifacts_uri,
            "_MLFLOW_STATIC_PREFIX": PREFIX,
        })
        # Every request has passed spellray's token check before MLflow sees it, so MLflow's
        # Host-header allow-list (DNS-rebinding defence for an unauthenticated server) would
        # only refuse runs that reach the server by a name. Cross-origin writes stay refused,
        # except from the server's own origin (the UI, opened at the advertised URL).
        os.environ.setdefault("MLFLOW_SERVER_ALLOWED_HOSTS", "*")
        origin = urlsplit(self.advertise_url)
        os.environ.setdefault("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS",
                              f"{origin.scheme}://{origin.netloc}")

    def _ensure_experiment(self, store: Any, name: str) -> str:
        from mlflow.entities import ExperimentTag
        from mlflow.exceptions import MlflowException

        # MLflow 3's UI shows an experiment by its kind: without this tag, a run opens under
        # "Evaluations" of the GenAI view instead of the model-training view.
        kind = ExperimentTag(EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        experiment = store.get_experiment_by_name(name)
        if experiment is None:
            try:
                return store.create_experiment(name, tags=[kind])
            except MlflowException:  # made meanwhile (in the UI, say)
                experiment = store.get_experiment_by_name(name)
        if experiment.lifecycle_stage == "deleted":  # deleted in the UI: runs still go there
            store.restore_experiment(experiment.experiment_id)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) is None:  # made by an older spellray
            store.set_experiment_tag(experiment.experiment_id, kind)
        return experiment.experiment_id

    @property
    def experiment_id(self) -> str:
        self._load()
        assert self._experiment_id is not None
        return self._experiment_id

    # -- projects' experiments -------------------------------------------------------------
    def project_experiment(self, name: str) -> str:
        """The id of the experiment named ``name`` (a project's), made (or restored) now."""
        return self._ensure_experiment(self._load(), name)

    def experiment_named(self, name: str) -> str | None:
        """The id of an experiment of that name (deleted ones too), or None."""
        found = self._load().get_experiment_by_name(name)
        return None if found is None else found.experiment_id

    def rename_experiment(self, experiment_id: str, name: str) -> None:
        self._load().rename_experiment(experiment_id, name)

    def archive_experiment(self, experiment_id: str, archived: bool) -> None:
        """MLflow's delete (its UI hides it and its runs; restorable) or restore."""
        store = self._load()
        experiment = store.get_experiment(experiment_id)
        if archived and experiment.lifecycle_stage == "active":
            store.delete_experiment(experiment_id)
        elif not archived and experiment.lifecycle_stage == "deleted":
            store.restore_experiment(experiment_id)

    def move_runs(self, mlflow_run_ids: list[str], experiment_id: str | None) -> None:
        """Move MLflow runs into experiment ``experiment_id`` (None: the uncategorized one),
        keeping their ids, metrics and artifacts. MLflow has no API for this (its runs are
        made in an experiment for good); spellray owns this store, so it sets the runs'
        experiment in MLflow's own table, the one column that places a run, in one
        transaction. A runner logging to a run meanwhile goes on logging to the same id."""
        if not mlflow_run_ids:
            return
        from mlflow.store.tracking.dbmodels.models import SqlRun

        target = int(experiment_id or self.experiment_id)
        store = self._load()
        with store.ManagedSessionMaker(read_only=False) as session:
            session.query(SqlRun).filter(SqlRun.run_uuid.in_(mlflow_run_ids)).update(
                {SqlRun.experiment_id: target}, synchronize_session=False)

    # -- runs -----------------------------------------------------------------------------
    def create_run(self, run_id: int, kind: str, command: str, params: dict[str, str],
                   experiment_id: str | None = None) -> str:
        """A new MLflow run for spellray run ``run_id`` in ``experiment_id`` (a project's;
        None: the uncategorized runs' experiment); its MLflow run id."""
        from mlflow.entities import Param, RunTag

        store = self._load()
        tags = [RunTag("spellray.run_id", str(run_id)), RunTag("spellray.kind", kind),
                RunTag("spellray.command", command[:TAG_VALUE_LENGTH])]
        run = store.create_run(experiment_id=experiment_id or self.experiment_id,
                               user_id="spellray",
                               start_time=int(time.time() * 1000), tags=tags,
                               run_name=f"run-{run_id}")
        mlflow_run_id = run.info.run_id
        items = [Param(k, v[:PARAM_VALUE_LENGTH]) for k, v in params.items()]
        for chunk in _chunks(items, PARAMS_PER_BATCH):
            store.log_batch(mlflow_run_id, metrics=[], params=chunk, tags=[])
        return mlflow_run_id

    def log_metrics(self, mlflow_run_id: str, points: list[MetricPoint]) -> None:
        from mlflow.entities import Metric

        store = self._load()
        metrics = [Metric(p.name, p.value, int(p.time * 1000), p.index) for p in points]
        for chunk in _chunks(metrics, METRICS_PER_BATCH):
            store.log_batch(mlflow_run_id, metrics=chunk, params=[], tags=[])

    def end_run(self, mlflow_run_id: str, status: str) -> None:
        """Mark the MLflow run ended as spellray's run ended (``status`` is spellray's)."""
        from mlflow.entities import RunStatus

        self._load().update_run_info(mlflow_run_id, RunStatus.from_string(_MLFLOW_STATUS[status]),
                                     end_time=int(time.time() * 1000), run_name=None)

    # -- reading --------------------------------------------------------------------------
    def metric_names(self, mlflow_run_id: str) -> list[str]:
        return sorted(self._load().get_run(mlflow_run_id).data.metrics)

    def series(self, mlflow_run_id: str, name: str) -> list[MetricValue]:
        """Every value of metric ``name``, in index order (then time)."""
        history = self._load().get_metric_history(mlflow_run_id, name)
        values = [MetricValue(index=m.step, value=m.value, time=m.timestamp / 1000)
                  for m in history]
        return sorted(values, key=lambda v: (v.index, v.time))

    def summaries(self, mlflow_run_id: str, skip_prefix: str | None = None) -> list[MetricSummary]:
        """Each metric's summary, but those whose name starts with ``skip_prefix``."""
        result = []
        for name in self.metric_names(mlflow_run_id):
            if skip_prefix and name.startswith(skip_prefix):
                continue
            values = self.series(mlflow_run_id, name)
            if not values:
                continue
            numbers = [v.value for v in values]
            result.append(MetricSummary(name=name, count=len(values), last=values[-1].value,
                                        min=min(numbers), max=max(numbers),
                                        last_index=values[-1].index,
                                        last_time=values[-1].time))
        return result


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

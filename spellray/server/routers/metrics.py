"""HTTP routes for metrics (thin; services/metrics.py does the work). MLflow's own API and
UI are served under /mlflow (tracking_gate.py, browser_sessions.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from spellray.schemas import MetricBatch, MetricSeries, MetricSummary, TrackingInfo, UiLogin
from spellray.schemas.base import DbId
from spellray.server.auth import Scope, scoped
from spellray.server.services.metrics import MetricService

router = APIRouter(prefix="/api", tags=["metrics"])


def service(request: Request) -> MetricService:
    return MetricService(request.app.state.ctx)


Service = Annotated[MetricService, Depends(service)]


@router.post("/runs/{run_id}/tracking", response_model=TrackingInfo)
@scoped(Scope.metrics_write)
def tracking(run_id: DbId, metrics: Service) -> TrackingInfo:
    return metrics.tracking_info(run_id)


@router.post("/runs/{run_id}/metrics", status_code=204)
@scoped(Scope.metrics_write)
def log_metrics(run_id: DbId, body: MetricBatch, metrics: Service) -> Response:
    metrics.log(run_id, body)
    return Response(status_code=204)


@router.get("/runs/{run_id}/metrics", response_model=list[MetricSummary])
@scoped(Scope.runs_read)
def list_metrics(run_id: DbId, metrics: Service) -> list[MetricSummary]:
    return metrics.list(run_id)


@router.get("/runs/{run_id}/metrics/{name:path}", response_model=MetricSeries)
@scoped(Scope.runs_read)
def get_metric(run_id: DbId, name: str, metrics: Service) -> MetricSeries:
    return metrics.series(run_id, name)


# Admins only: MLflow cannot filter by owner, its UI shows every owner's runs (a member
# has `spell metrics RUN` and the console).
@router.post("/ui/login", response_model=UiLogin)
@scoped(Scope.admin)
def ui_login(request: Request, metrics: Service, run_id: DbId | None = None) -> UiLogin:
    return metrics.ui_login(request.app.state.browser_sessions, run_id)

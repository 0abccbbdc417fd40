"""The SDK's metrics side: ``client.metrics`` (a run's metrics: numbers from its MLflow run,
text and the names MLflow refuses from spellray's own table, as one list) and the one-time
URL that opens MLflow's UI. Sending metrics from user code is
``spellray.metrics.send_metric``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from spellray.client._http import ResourceGroup
from spellray.schemas import MetricBatch, MetricSeries, MetricSummary, TrackingInfo, UiLogin


class Metrics(ResourceGroup):
    def list(self, run_id: int) -> list[MetricSummary]:
        """Each metric of run ``run_id``: count, last, min and max."""
        data = self._api.request("GET", f"/api/runs/{run_id}/metrics")
        return [MetricSummary.model_validate(item) for item in data]

    def get(self, run_id: int, name: str) -> MetricSeries:
        """Every value of metric ``name`` of run ``run_id``, in index order (a text metric's
        values are str)."""
        # Every reserved character escaped, "/" too: a name may hold "?", "#", "%", "..".
        return MetricSeries.model_validate(
            self._api.request("GET", f"/api/runs/{run_id}/metrics/{quote(name, safe='')}"))

    def score(self, run_id: int, metric: str, aggregation: str = "last") -> float | None:
        """A run's ``metric`` aggregated over its series (last, avg, min or max); None if the
        run never reported it."""
        from spellray.schemas.metrics import score

        return score(self.list(run_id), metric, aggregation,
                     lambda: self.get(run_id, metric).values)

    def log(self, run_id: int, metrics: list[dict[str, Any]]) -> None:
        """Record metrics ({"name", "value", "index", "time"}) on a run, as its runner does."""
        body = MetricBatch.model_validate({"metrics": metrics})
        self._api.request("POST", f"/api/runs/{run_id}/metrics", json=body.model_dump())

    def tracking(self, run_id: int) -> TrackingInfo:
        """The run's MLflow run (made now if it has none): MLFLOW_TRACKING_URI and MLFLOW_RUN_ID."""
        return TrackingInfo.model_validate(
            self._api.request("POST", f"/api/runs/{run_id}/tracking"))

    def ui_url(self, run_id: int | None = None) -> str:
        """A one-time URL (two minutes) that logs a browser in to MLflow's UI, at the run's
        page given ``run_id``."""
        params = {"run_id": run_id} if run_id is not None else {}
        login = UiLogin.model_validate(self._api.request("POST", "/api/ui/login", params=params))
        return self._api.url + login.login_path

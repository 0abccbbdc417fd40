"""Metrics and MLflow tracking (send_metric, spell metrics, spell ui)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import Field, StrictStr, field_validator

from spellray.schemas.base import Schema


class TrackingInfo(Schema):
    """Where a run's MLflow run is: what the runner puts in MLFLOW_* for the command."""

    tracking_uri: str
    mlflow_run_id: str
    experiment_id: str


class MetricPoint(Schema):
    """One value of a metric, as ``spellray.metrics.send_metric`` records it: a number or a
    text (a str). ``time`` is seconds since the epoch; ``index`` is MLflow's step."""

    name: str
    # StrictStr first: a JSON string stays text, never parsed as a number.
    value: StrictStr | float
    index: int = Field(ge=-(2**63), lt=2**63)
    time: float = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from spellray.metrics import check_name

        return check_name(value)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: str | float) -> str | float:
        if isinstance(value, str):
            from spellray.metrics import validate_text

            return validate_text("value", value)
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value


class MetricBatch(Schema):
    metrics: list[MetricPoint] = Field(max_length=10_000)


class MetricSummary(Schema):
    """One metric of a run: how many values, and the last, smallest and largest (numbers
    only: a text metric has no min or max, and its ``last`` is its last text)."""

    name: str
    kind: Literal["number", "text"] = "number"
    count: int
    last: StrictStr | float
    min: float | None = None
    max: float | None = None
    last_index: int
    last_time: float


class MetricValue(Schema):
    index: int
    value: StrictStr | float
    time: float


class MetricSeries(Schema):
    name: str
    values: list[MetricValue]


class UiLogin(Schema):
    """A one-time URL (path) that logs a browser in to the MLflow UI."""

    login_path: str
    expires_in: int


AGGREGATIONS = ("last", "avg", "min", "max")


def score(summaries: list[MetricSummary], name: str, aggregation: str,
          values: Callable[[], list[MetricValue]]) -> float | None:
    """A run's metric ``name`` aggregated (last, avg, min or max) from its ``summaries``,
    asking for its ``values`` only for avg; None for a metric the run never sent, or a text
    one (text is shown, never scored). The SDK's ``metrics.score`` and the console's search
    page both score trials with it."""
    if aggregation not in AGGREGATIONS:
        raise ValueError("aggregation is one of last, avg, min, max")
    summary = next((s for s in summaries if s.name == name), None)
    if summary is None or summary.kind == "text":
        return None
    if aggregation != "avg":
        value = getattr(summary, aggregation)
        return None if value is None else float(value)
    numbers = [float(v.value) for v in values()]
    return sum(numbers) / len(numbers) if numbers else None

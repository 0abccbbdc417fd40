"""Hyperparameter searches (spell hyper)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import Field

from spellray.schemas.base import Schema
from spellray.schemas.runs import RunRequest
from spellray.tune.space import ParamSpec


class SearchStatus(str, Enum):
    """A search's statuses: `running` until its driver reports the end, `stopping` once a
    stop is asked (no new trials; running ones save their outputs)."""

    running = "running"
    stopping = "stopping"
    complete = "complete"
    stopped = "stopped"
    killed = "killed"
    failed = "failed"

    @property
    def is_terminal(self) -> bool:
        return self not in (SearchStatus.running, SearchStatus.stopping)


class HyperRequest(Schema):
    """`spell hyper grid|random|bayesian`: the search, and the run every trial is made from
    (``run.params`` stays empty: each trial's params come from the search space)."""

    kind: Literal["grid", "random", "bayesian"]
    params: list[ParamSpec]
    run: RunRequest
    num_runs: int | None = Field(default=None, ge=1)
    parallel: int | None = Field(default=None, ge=1)
    metric: str | None = None
    aggregation: Literal["last", "avg", "min", "max"] = "last"
    mode: Literal["max", "min"] = "max"
    early_stop: bool = False
    max_concurrent: int | None = Field(default=None, ge=1)


class HyperSearch(Schema):
    id: int
    kind: str
    status: str  # a SearchStatus value
    status_reason: str | None = None
    command: str
    params: list[ParamSpec]
    num_runs: int | None = None
    parallel: int | None = None
    metric: str | None = None
    aggregation: str = "last"
    mode: str = "max"
    early_stop: bool = False
    max_concurrent: int | None = None
    run_ids: list[int] = Field(default_factory=list)
    ray_submission_id: str | None = None
    archived: bool = False
    owner: str | None = None
    created_at: datetime
    ended_at: datetime | None = None


class HyperList(Schema):
    searches: list[HyperSearch]


class TrialStart(Schema):
    params: dict[str, str]


class HyperStatusReport(Schema):
    status: Literal["complete", "stopped", "failed"]
    reason: str | None = None

"""An ended run's MLflow side (its runner's undelivered metrics, its MLflow run's end) is not
lost when the server dies between the run's end and finishing it: the row made with the
terminal status stays until it is done, and the reconciler finishes it. The chaos campaign
(tests/chaos/test_server_faults.py) lost a run's metric that way: the server was killed
while it waited for MLflow to load, right after the run's `complete` was committed.

Real parts: the state DB (SQLite and Postgres), MLflow's own SQLite store, file storage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from spellray.schemas import MachineType, RunRequest, RunStatus, StatusReport
from spellray.server import db
from spellray.server.services import metrics
from spellray.server.services.metrics import MetricService, finish_unfinished_tracking
from spellray.server.services.run_preparation import SPELL_DIR, run_dir
from spellray.server.services.run_status import change_status
from spellray.server.services.runs import RunService
from spellray.server.tracking import Tracking
from spellray.settings import Settings
from spellray.storage.paths import UNDELIVERED_METRICS_FILE, join
from tests.server.service_context import service_context

CPU = MachineType(name="CPU", num_cpus=1)


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Iterator[Any]:
    tracking = Tracking(Settings(home=tmp_path), "http://127.0.0.1:1")
    with service_context(database_url, tmp_path, {"CPU": CPU}, tracking=tracking) as made:
        yield made


def _undelivered(ctx: Any, run_id: int, value: float) -> str:
    """What a runner leaves in storage when the server was down past its drain."""
    path = join(run_dir(run_id), SPELL_DIR, UNDELIVERED_METRICS_FILE)
    point = {"name": "chaos", "value": value, "index": 0, "time": time.time()}
    ctx.storage.write_bytes(path, (json.dumps(point) + "\n").encode())
    return path


def _unfinished(ctx: Any) -> list[int]:
    with ctx.sessions() as session:
        return list(session.scalars(select(db.UnfinishedTracking.run_id)))


def _values(ctx: Any, run_id: int) -> list[Any]:
    return [v.value for v in MetricService(ctx).series(run_id, "chaos").values]


def test_a_run_ended_by_a_server_that_died_before_its_mlflow_side_is_finished_later(
        ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunService(ctx).submit(RunRequest(command="python train.py"))
    path = _undelivered(ctx, run.id, 7.0)
    # The runner's `complete` committed, and then the server was killed: no finish_tracking.
    with ctx.sessions() as session:
        change_status(session, session.get(db.Run, run.id), RunStatus.complete)
        session.commit()
    assert _unfinished(ctx) == [run.id]

    # A later server's reconciler: left alone while MLflow loads, and until it is due.
    assert finish_unfinished_tracking(ctx) == 0
    ctx.tracking._load()
    assert finish_unfinished_tracking(ctx) == 0  # the call that ended it may still be at it
    assert _unfinished(ctx) == [run.id]
    monkeypatch.setattr(metrics, "TRACKING_RETRY", timedelta(0))
    assert finish_unfinished_tracking(ctx) == 1
    assert _values(ctx, run.id) == [7.0]
    assert not ctx.storage.exists(path)
    assert _unfinished(ctx) == []
    assert finish_unfinished_tracking(ctx) == 0  # taken once: never logged twice
    assert _values(ctx, run.id) == [7.0]


def test_a_run_ended_by_its_runner_finishes_its_mlflow_side_at_once(ctx: Any) -> None:
    runs = RunService(ctx)
    run = runs.submit(RunRequest(command="python train.py"))
    _undelivered(ctx, run.id, 3.0)
    runs.report(run.id, StatusReport(status=RunStatus.failed, exit_code=1))
    assert _unfinished(ctx) == []
    assert _values(ctx, run.id) == [3.0]


def test_a_killed_run_leaves_nothing_unfinished(ctx: Any) -> None:
    runs = RunService(ctx)
    run = runs.submit(RunRequest(command="sleep 100"))
    assert runs.kill(run.id).status is RunStatus.killed
    assert _unfinished(ctx) == []

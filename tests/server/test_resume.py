"""Auto-resume on the state DB (SQLite and Postgres): an interrupted run with auto-resume is
made again, the chain linked both ways in one transaction, up to --max-resumes; without
auto-resume, nothing. (On a real fake cluster with a killed node: tests/chaos/test_spot.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from spellray.schemas import MachineType, RunRequest, RunStatus
from spellray.server import db
from spellray.server.services.resume import resume_interrupted
from spellray.server.services.run_preparation import record_path
from spellray.server.services.run_status import change_status
from spellray.server.services.runs import RunService
from tests.server.service_context import service_context

SPOT = MachineType(name="T4-spot", num_cpus=1, spot=True, default_auto_resume=True)
CPU = MachineType(name="CPU", num_cpus=1)


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Iterator[Any]:
    with service_context(database_url, tmp_path, {"CPU": CPU, "T4-spot": SPOT}) as made:
        yield made


def _interrupt(ctx: Any, run_id: int) -> None:
    with ctx.sessions() as session:
        change_status(session, session.get(db.Run, run_id), RunStatus.interrupted,
                      "the T4-spot machine it ran on (node ab12) was lost: health check failed")
        session.commit()


def test_an_interrupted_run_is_made_again_with_the_same_options(ctx: Any) -> None:
    runs = RunService(ctx)
    first = runs.submit(RunRequest(
        command="python train.py --lr :lr:", machine_type="T4-spot", params={"lr": "0.1"},
        env={"SEED": "1"}, labels=["exp"], description="d", timeout_minutes=30,
        stop_conditions=["loss < 0.1"], max_resumes=3), owner="vision")
    assert first.auto_resume and first.max_resumes == 3  # the machine type's default
    assert resume_interrupted(ctx) == []  # not interrupted: nothing to do
    assert not runs.get(first.id).resume_pending
    _interrupt(ctx, first.id)
    assert runs.get(first.id).resume_pending  # a waiter waits for the next pass
    [second] = resume_interrupted(ctx)
    assert resume_interrupted(ctx) == []  # once only
    old, new = runs.get(first.id), runs.get(second)
    assert old.resumed_as == second and new.resumed_from == first.id
    assert not old.resume_pending
    assert new.status == RunStatus.requested  # queued: waits for a machine like any run
    assert (new.command, new.machine_type, new.env, new.params, new.labels, new.description,
            new.timeout_minutes, new.stop_conditions, new.max_resumes, new.owner) == (
        "python train.py --lr 0.1", "T4-spot", {"SEED": "1"}, {"lr": "0.1"}, ["exp"], "d",
        30, ["loss < 0.1"], 3, "vision")  # the team that owned it still sees it
    record = json.loads(ctx.storage.read_bytes(record_path(second)))
    assert record["resumed_from"] == first.id and record["auto_resume"] is True


def test_max_resumes_ends_the_chain_saying_so(ctx: Any) -> None:
    runs = RunService(ctx)
    run_id = runs.submit(RunRequest(command="python train.py", machine_type="T4-spot",
                                    max_resumes=2)).id
    chain = [run_id]
    for _ in range(2):
        _interrupt(ctx, chain[-1])
        chain += resume_interrupted(ctx)
    assert len(chain) == 3
    _interrupt(ctx, chain[-1])
    assert resume_interrupted(ctx) == []
    last = runs.get(chain[-1])
    assert last.resumed_as is None and not last.resume_pending  # a waiter stops waiting
    assert not runs.get(chain[0]).resume_pending
    assert last.status_reason.endswith(
        "; not resumed: its chain was resumed 2 time(s), --max-resumes 2"), last.status_reason
    assert resume_interrupted(ctx) == []  # said once


def test_without_auto_resume_no_run_follows(ctx: Any) -> None:
    runs = RunService(ctx)
    off = runs.submit(RunRequest(command="true", machine_type="T4-spot", auto_resume=False))
    plain = runs.submit(RunRequest(command="true", machine_type="CPU"))
    assert not off.auto_resume and not plain.auto_resume
    for run_id in (off.id, plain.id):
        _interrupt(ctx, run_id)
        assert not runs.get(run_id).resume_pending  # nothing for a waiter to wait for
    assert resume_interrupted(ctx) == []
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(db.Run)) == 2


def test_ray_down_leaves_the_resume_for_a_later_pass(ctx: Any) -> None:
    from spellray.errors import RayUnavailable

    runs = RunService(ctx)
    run_id = runs.submit(RunRequest(command="true", machine_type="CPU", auto_resume=True)).id
    _interrupt(ctx, run_id)
    ctx.ray.up = False
    with pytest.raises(RayUnavailable):
        resume_interrupted(ctx)
    ctx.ray.up = True
    assert len(resume_interrupted(ctx)) == 1


def test_a_workflows_child_is_resumed_in_its_workflow_while_the_workflow_runs(
        ctx: Any) -> None:
    from spellray.server.services.workflow_membership import Membership

    runs = RunService(ctx)
    manager = runs.submit(RunRequest(command="python workflow.py"),
                          Membership(manager=True), owner="vision").id
    child = runs.submit(RunRequest(command="python train.py", machine_type="T4-spot"),
                        Membership(workflow_id=manager, parent_run_id=manager)).id
    _interrupt(ctx, child)
    [again] = resume_interrupted(ctx)
    new = runs.get(again)
    assert (new.workflow_id, new.parent_run_id, new.owner, new.resumed_from) == (
        manager, manager, "vision", child)
    with ctx.sessions() as session:  # its runner is told its workflow, as the first's was
        queued = session.get(db.QueuedRun, again)
        assert queued.job["env"]["SPELL_WORKFLOW_ID"] == str(manager)
    # The workflow ended: it starts no runs, a resume neither, and the child says why.
    with ctx.sessions() as session:
        change_status(session, session.get(db.Run, manager), RunStatus.complete, None)
        session.commit()
    _interrupt(ctx, again)
    assert resume_interrupted(ctx) == []
    assert runs.get(again).status_reason.endswith(
        f"; not resumed: workflow {manager} is stopping or has ended: it starts no new runs")

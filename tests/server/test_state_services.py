"""Services whose rules live in the state DB, on SQLite and Postgres alike: models' versions
and what refuses a removal, a workflow's runs and the stop that takes them all, and
--idempotent reuse. (Run statuses, the queue, searches, servers and tokens: their own files.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from spellray.errors import Conflict, NotFound
from spellray.schemas import MachineType, ModelRequest, RunRequest, RunStatus, StatusReport
from spellray.server import db
from spellray.server.services.models import ModelService
from spellray.server.services.run_preparation import PreparedRun
from spellray.server.services.run_queue import enqueue, queued
from spellray.server.services.runs import RunService
from spellray.server.services.workflow_membership import Membership
from spellray.settings import Settings
from spellray.storage.store import Storage

CPU = MachineType(name="CPU", num_cpus=1)


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """What these services use of a server: its DB and its storage (a real folder)."""
    engine = db.make_engine(database_url)
    storage = Storage(f"file://{tmp_path / 'storage'}", Settings(home=tmp_path))
    yield SimpleNamespace(sessions=db.make_session_factory(engine), storage=storage,
                          wake=threading.Event())
    engine.dispose()


def _insert(service: RunService, command: str, member: Membership | None = None,
            idempotent: bool = False) -> tuple[int, bool]:
    request = RunRequest(command=command, idempotent=idempotent)
    prepared = PreparedRun(machine_type=CPU, git=None, ray_env={}, env_digest=None,
                           command=command, identity=f"identity of {command}", spec={})
    run_id, token = service._insert(request, prepared, member=member,
                                    kind="workflow" if member and member.manager else "run")
    return run_id, token is not None


def test_model_versions_and_what_refuses_a_removal(ctx: Any) -> None:
    ctx.storage.write_bytes("runs/1/model/weights.txt", b"42")
    models = ModelService(ctx)
    assert models.create(ModelRequest(name="digits", resource="runs/1/model")).version == "v1"
    assert models.create(ModelRequest(name="digits", resource="runs/1/model")).version == "v2"
    with pytest.raises(Conflict, match="digits:v1 exists already"):
        models.create(ModelRequest(name="digits", version="1", resource="runs/1/model"))
    assert models.create(ModelRequest(name="alpha", resource="runs/1/model")).version == "v1"
    assert [(m.name, m.version) for m in models.list()] == [
        ("alpha", "v1"), ("digits", "v1"), ("digits", "v2")]
    assert models.get("digits").version == "v2"  # the newest
    with ctx.sessions() as session:
        session.add(db.ModelServer(name="web", model_name="digits", model_version="v2",
                                   status="running", token="t", token_hash="h"))
        session.commit()
    with pytest.raises(Conflict, match="served by web"):
        models.delete("digits:v2")
    assert models.delete("digits:v1").version == "v1"
    with pytest.raises(NotFound):
        models.get("digits:v1")


def test_a_workflows_stop_takes_every_active_run_with_it(ctx: Any) -> None:
    runs = RunService(ctx)
    manager, _ = _insert(runs, "python manager.py", Membership(manager=True))
    children = [_insert(runs, f"python step.py {i}", Membership(workflow_id=manager))[0]
                for i in range(3)]
    stranger, _ = _insert(runs, "python other.py")
    with ctx.sessions() as session:
        for run_id in (children[0], stranger):
            enqueue(session, session.get(db.Run, run_id), CPU, CPU, 1, {"entrypoint": "true"})
        session.commit()
    runs.kill(manager)
    with ctx.sessions() as session:
        status = dict(session.execute(select(db.Run.id, db.Run.status)).tuples().all())
        assert [r.run_id for r in queued(session)] == [stranger]  # its child left the queue
    assert {status[r] for r in [manager, *children]} == {RunStatus.killed.value}
    assert status[stranger] == RunStatus.requested.value
    with pytest.raises(Conflict, match="starts no new runs"):
        _insert(runs, "python late.py", Membership(workflow_id=manager))
    assert runs.list(0, None, workflow_id=manager).total == 4  # manager and its 3 runs


def test_idempotent_reuses_an_active_or_complete_run_only(ctx: Any) -> None:
    runs = RunService(ctx)
    first, made = _insert(runs, "python train.py", idempotent=True)
    assert made and _insert(runs, "python train.py", idempotent=True) == (first, False)
    runs.report(first, _report(RunStatus.failed))
    second, made = _insert(runs, "python train.py", idempotent=True)  # a failed one is not
    assert made and second == first + 1
    runs.report(second, _report(RunStatus.complete))
    assert _insert(runs, "python train.py", idempotent=True) == (second, False)
    with ctx.sessions() as session:
        claim = session.get(db.IdempotencyClaim, "identity of python train.py")
        assert claim is not None and claim.run_id == second


def _report(status: RunStatus) -> StatusReport:
    return StatusReport(status=status, exit_code=0 if status == RunStatus.complete else 1)


def test_the_command_search_ignores_case_and_takes_wildcards_literally(ctx: Any) -> None:
    runs = RunService(ctx)
    wanted, _ = _insert(runs, "python Train.py --lr 0.1")
    _insert(runs, "python evaluate.py")
    assert [r.id for r in runs.list(0, None, text="TRAIN.PY").runs] == [wanted]
    assert runs.list(0, None, text="%").total == 0  # LIKE's wildcard is only a character


def test_the_list_says_what_each_run_says(ctx: Any) -> None:
    """The list loads labels and histories for the whole page at once (what `spell ps`
    costs under load): each listed run is the run as `get` gives it, on both databases."""
    runs = RunService(ctx)
    ids = [_insert(runs, f"echo {n}")[0] for n in range(4)]
    with ctx.sessions() as session:
        session.add_all([db.RunLabel(run_id=ids[1], label=name) for name in ("zeta", "alpha")]
                        + [db.RunLabel(run_id=ids[2], label="alpha")])
        session.commit()
    runs.report(ids[1], StatusReport(status=RunStatus.running))
    runs.report(ids[1], _report(RunStatus.complete))
    runs.report(ids[3], _report(RunStatus.failed))
    listed = runs.list(0, None)
    assert [r.id for r in listed.runs] == ids[::-1] and listed.total == 4
    assert listed.runs == [runs.get(run_id) for run_id in ids[::-1]]
    assert listed.runs[2].labels == ["alpha", "zeta"]
    assert [e.status for e in listed.runs[2].history][-2:] == [RunStatus.running,
                                                                RunStatus.complete]
    assert [r.id for r in runs.list(1, "alpha").runs] == [ids[2]]  # newest, one per page

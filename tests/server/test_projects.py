"""Projects and archived runs on a real DB (SQLite and Postgres) with a real MLflow store:
owners' rules (a member sees their own and their teams' projects, nothing of anyone else's),
the run a project takes, MLflow runs moving with their runs, and all-or-nothing changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from spellray.errors import Conflict, InvalidInput, NotFound, RunNotFound
from spellray.schemas import ProjectRequest, ProjectUpdate, RunRequest, RunStatus
from spellray.server import db
from spellray.server.services import run_archive
from spellray.server.services.metrics import experiment_of
from spellray.server.services.projects import ProjectService, for_new_run, project_of_new_run
from spellray.server.services.runs import RunService
from spellray.server.tracking import Tracking
from spellray.settings import Settings
from spellray.storage.store import Storage
from tests.server.test_owners import _run


@pytest.fixture
def ctx(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from mlflow.server import handlers

    # MLflow's server keeps one store per process: each test gets its own (its tmp_path's).
    monkeypatch.setattr(handlers, "_tracking_store", None)
    engine = db.make_engine(database_url)
    settings = Settings(home=tmp_path)
    storage = Storage(f"file://{tmp_path / 'storage'}", settings)
    tracking = Tracking(settings, "http://127.0.0.1:9")  # a real MLflow store (SQLite)
    yield SimpleNamespace(sessions=db.make_session_factory(engine), storage=storage,
                          wake=threading.Event(), open_uploads=set(), tracking=tracking)
    engine.dispose()


def _projects(ctx: Any, principal: Any) -> ProjectService:
    return ProjectService(ctx, principal.owners)


def _mlflow_run(ctx: Any, run_id: int) -> str:
    """Give run ``run_id`` an MLflow run, as its runner's first request would."""
    mlflow_run_id = ctx.tracking.create_run(run_id, "run", "true", {})
    with ctx.sessions() as session:
        session.get(db.Run, run_id).mlflow_run_id = mlflow_run_id
        session.commit()
    return mlflow_run_id


def _experiment(ctx: Any, mlflow_run_id: str) -> str:
    return ctx.tracking._load().get_run(mlflow_run_id).info.experiment_id


def test_a_member_sees_their_own_and_their_teams_projects_only(ctx: Any, people: Any) -> None:
    _projects(ctx, people.alice).create(ProjectRequest(name="mine"), "alice")
    _projects(ctx, people.alice).create(ProjectRequest(name="team-p"), "vision")
    _projects(ctx, people.bob).create(ProjectRequest(name="bobs"), "bob")

    def names(principal: Any) -> list[str]:
        return [p.name for p in _projects(ctx, principal).list()]

    assert names(people.alice) == ["mine", "team-p"]
    assert names(people.carol) == ["team-p"]
    assert names(people.bob) == ["bobs"]
    assert names(people.admin) == ["bobs", "mine", "team-p"]
    bobs_run, alices_run = _run(ctx, "bob"), _run(ctx, "alice")
    for attempt in (lambda: _projects(ctx, people.bob).get("mine"),
                    lambda: _projects(ctx, people.bob).add_runs("mine", [bobs_run]),
                    lambda: _projects(ctx, people.bob).archive("mine", True),
                    lambda: _projects(ctx, people.bob).edit("mine", ProjectUpdate(name="x")),
                    lambda: RunService(ctx).list(0, None, people.bob, project="mine")):
        with pytest.raises(NotFound, match="there is no project 'mine'"):
            attempt()
    with pytest.raises(RunNotFound, match=f"there is no run {bobs_run}"):
        _projects(ctx, people.alice).add_runs("mine", [alices_run, bobs_run])
    with ctx.sessions() as session:  # all or nothing: alice's own run did not move either
        assert session.get(db.Run, alices_run).project_id is None
        # A new run of bob's cannot go in alice's project; a team's run goes in the team's.
        with pytest.raises(NotFound):
            for_new_run(session, "mine", "bob")
        assert for_new_run(session, "team-p", "carol") is not None
        assert for_new_run(session, "mine", "admin") is not None


def test_mlflow_runs_move_with_their_runs_and_a_rename_renames_the_experiment(
        ctx: Any, people: Any) -> None:
    projects = _projects(ctx, people.admin)
    made = projects.create(ProjectRequest(name="mnist", description="digits"), "admin")
    assert made.mlflow_experiment_id == ctx.tracking.experiment_named("mnist")
    first, second = _run(ctx, "admin"), _run(ctx, "admin")
    first_mlflow = _mlflow_run(ctx, first)
    default = ctx.tracking.experiment_id
    assert _experiment(ctx, first_mlflow) == default

    assert projects.add_runs("mnist", [first, second, first]) == [first, second]
    assert _experiment(ctx, first_mlflow) == made.mlflow_experiment_id
    assert projects.add_runs("mnist", [first]) == []  # already there: nothing moves
    assert projects.get("mnist").status_counts == {"running": 2}
    # A run that gets its MLflow run later makes it in its project's experiment.
    assert experiment_of(ctx, second) == made.mlflow_experiment_id

    projects.create(ProjectRequest(name="other"), "admin")
    with pytest.raises(InvalidInput, match=f"run {first} is not in project other"):
        projects.remove_runs("other", [first])
    assert projects.remove_runs("mnist", [first]) == [first]
    assert _experiment(ctx, first_mlflow) == default

    ctx.tracking.project_experiment("taken-in-mlflow")  # made in MLflow's UI, say
    for bad in ("other", "taken-in-mlflow"):
        with pytest.raises(Conflict):
            projects.edit("mnist", ProjectUpdate(name=bad))
    assert projects.get("mnist").name == "mnist"  # nothing changed
    projects.edit("mnist", ProjectUpdate(name="digits", description=""))
    assert ctx.tracking.experiment_named("digits") == made.mlflow_experiment_id
    assert ctx.tracking.experiment_named("mnist") is None
    assert projects.get("digits").description is None


def test_archived_projects_take_no_runs_and_active_ones_are_not_archived(
        ctx: Any, people: Any) -> None:
    projects = _projects(ctx, people.admin)
    projects.create(ProjectRequest(name="p"), "admin")
    active = _run(ctx, "admin")
    projects.add_runs("p", [active])
    with pytest.raises(Conflict, match=f"active runs \\({active}\\)"):
        projects.archive("p", True)
    with ctx.sessions() as session:
        session.get(db.Run, active).status = RunStatus.complete.value
        session.commit()
    archived = projects.archive("p", True)
    assert archived.archived_at is not None and projects.list() == []
    assert [p.name for p in projects.list(archived=True)] == ["p"]
    with ctx.sessions() as session:
        with pytest.raises(Conflict, match="archived"):
            for_new_run(session, "p", "admin")
        # A resumed run stays in its interrupted run's project, archived or not.
        resumed = project_of_new_run(session, RunRequest(command="x"), None, "admin",
                                     resumed_from=(active, 1))
        assert resumed == session.scalar(select(db.Project.id).where(db.Project.name == "p"))
    with pytest.raises(Conflict, match="archived"):
        projects.remove_runs("p", [active])
    projects.archive("p", False)
    assert [p.name for p in projects.list()] == ["p"]


def test_archiving_runs_is_all_or_nothing_and_owners_apply(ctx: Any, people: Any) -> None:
    ended, active, bobs = _run(ctx, "alice"), _run(ctx, "alice"), _run(ctx, "bob")
    with ctx.sessions() as session:
        for run_id in (ended, bobs):
            session.get(db.Run, run_id).status = RunStatus.complete.value
        session.commit()
    with pytest.raises(Conflict, match=f"run {active} is running"):
        run_archive.set_archived(ctx, [ended, active], True, people.alice.owners)
    with pytest.raises(RunNotFound):
        run_archive.set_archived(ctx, [ended, bobs], True, people.alice.owners)
    with ctx.sessions() as session:
        assert run_archive.archived_ids(session, [ended, bobs]) == set()
    assert run_archive.set_archived(ctx, [ended, ended], True, people.alice.owners) == [ended]
    assert run_archive.set_archived(ctx, [ended], True, people.alice.owners) == []
    runs = RunService(ctx)
    assert [r.id for r in runs.list(0, None, people.alice).runs] == [active]
    assert [r.id for r in runs.list(0, None, people.alice, archived=True).runs] == [ended]
    with ctx.sessions() as session:
        assert run_archive.archived_run(session, f"runs/{ended}/model/x") == ended
        assert run_archive.archived_run(session, f"runs/{active}/model") is None
        assert run_archive.archived_run(session, "uploads/1") is None
    assert run_archive.set_archived(ctx, [ended], False, None) == [ended]

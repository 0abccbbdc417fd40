"""Projects: `spell project create | list | get | edit | add-runs | remove-runs | archive |
unarchive`, and the project a new run is made in (`spell run -p NAME`).

A project is a row here and the MLflow experiment of the same name, made with it, so MLflow's
UI groups a project's runs: a run's MLflow run is made in its project's experiment, and
moving a run between projects moves its MLflow run (tracking.py ``move_runs``). Projects have
owners like everything else (server/ownership.py): a member sees their own and their teams'.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, NotFound
from spellray.schemas import (
    ACTIVE_STATUSES,
    Project,
    ProjectRequest,
    ProjectUpdate,
    RunRequest,
)
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ownership import owned_by, seen_by, sees
from spellray.server.services.run_archive import runs_seen
from spellray.server.services.workflow_membership import Membership

ACTIVE = [s.value for s in ACTIVE_STATUSES]


def _taken(name: str) -> Conflict:
    return Conflict(f"a project named {name} exists already; pick another name")


def _not_found(name: str) -> NotFound:
    return NotFound(f"there is no project {name!r}; spell project list lists them, "
                    f"spell project create {name} makes it")


def find(session: Session, name: str, owners: frozenset[str] | None) -> db.Project:
    """Project ``name`` if ``owners`` see it (None: everyone's); another owner's is not
    there for them, as everything else."""
    project = session.scalar(select(db.Project).where(db.Project.name == name))
    if project is None or not sees(owners, project.owner):
        raise _not_found(name)
    return project


def for_new_run(session: Session, name: str, owner: str) -> int:
    """The id of the project a new run of ``owner``'s goes in (`-p NAME`): one its owner
    sees, and not archived."""
    project = find(session, name, seen_by(session, owner))
    if project.archived_at is not None:
        raise Conflict(f"project {name} is archived: it takes no new runs; "
                       f"spell project unarchive {name} first")
    return project.id


def project_of_new_run(session: Session, request: RunRequest, member: Membership | None,
                       owner: str, resumed_from: tuple[int, int] | None = None,
                       trial: bool = False) -> int | None:
    """The project a new run goes in: `-p NAME` (one its owner sees, not archived); a
    resumed run stays in its interrupted run's; a workflow's child without one goes in
    its workflow's; a search's trial in its search's (checked when the search began)."""
    if resumed_from is not None:
        old = session.get(db.Run, resumed_from[0])
        return old.project_id if old is not None else None
    if request.project is not None:
        if trial:
            return find(session, request.project, None).id
        return for_new_run(session, request.project, owner)
    if member is not None and member.workflow_id is not None:
        return session.scalar(select(db.Run.project_id)
                              .where(db.Run.id == member.workflow_id))
    return None


def names_of(session: Session, project_ids: set[int]) -> dict[int, str]:
    """Project names by id, one query (a run list's)."""
    if not project_ids:
        return {}
    rows = session.execute(select(db.Project.id, db.Project.name)
                           .where(db.Project.id.in_(sorted(project_ids))))
    return {row.id: row.name for row in rows}


def _schema(session: Session, project: db.Project) -> Project:
    counts = session.execute(
        select(db.Run.status, func.count()).where(db.Run.project_id == project.id,
                                                  db.Run.kind != "workspace")
        .group_by(db.Run.status))
    return Project(name=project.name, description=project.description, owner=project.owner,
                   archived_at=project.archived_at, created_at=project.created_at,
                   mlflow_experiment_id=project.mlflow_experiment_id,
                   status_counts={status: count for status, count in counts})


class ProjectService:
    """``owners``: whose projects and runs the caller sees (None: everyone's)."""

    def __init__(self, ctx: ServerContext, owners: frozenset[str] | None = None) -> None:
        self.ctx = ctx
        self.owners = owners

    def _check_name_free(self, session: Session, name: str) -> None:
        taken = session.scalar(select(db.Project.id).where(
            func.lower(db.Project.name) == name.lower()))
        if taken is not None:
            # Any owner's: a project is an MLflow experiment, whose names are one namespace.
            raise _taken(name)
        if name == self.ctx.tracking.experiment_name:
            raise Conflict(f"{name!r} is the MLflow experiment of runs without a project; "
                           "pick another project name")

    def create(self, request: ProjectRequest, owner: str) -> Project:
        with self.ctx.sessions() as session:
            self._check_name_free(session, request.name)
        # The experiment first: a project row always has one. An experiment of that name
        # made outside spellray (MLflow's UI) is taken as it is; a deleted one is restored.
        experiment_id = self.ctx.tracking.project_experiment(request.name)
        with self.ctx.sessions() as session:
            project = db.Project(name=request.name, description=request.description,
                                 owner=owner, mlflow_experiment_id=experiment_id)
            session.add(project)
            try:
                session.commit()
            except IntegrityError:  # made at the same moment by another request
                raise _taken(request.name) from None
            return _schema(session, project)

    def list(self, archived: bool = False) -> list[Project]:
        """The projects the caller sees, by name; archived ones only with ``archived``."""
        with self.ctx.sessions() as session:
            query = (select(db.Project).where(owned_by(db.Project.owner, self.owners))
                     .order_by(db.Project.name))
            query = query.where(db.Project.archived_at.is_not(None) if archived
                                else db.Project.archived_at.is_(None))
            return [_schema(session, p) for p in session.scalars(query)]

    def get(self, name: str) -> Project:
        with self.ctx.sessions() as session:
            return _schema(session, find(session, name, self.owners))

    def edit(self, name: str, change: ProjectUpdate) -> Project:
        with self.ctx.sessions() as session:
            project = find(session, name, self.owners)
            new_name = change.name if change.name not in (None, name) else None
            if new_name is not None:
                if project.archived_at is not None:
                    raise Conflict(f"project {name} is archived; spell project unarchive "
                                   f"{name} before renaming it")
                self._check_name_free(session, new_name)
                if self.ctx.tracking.experiment_named(new_name) is not None:
                    raise Conflict(f"MLflow has an experiment named {new_name} already; "
                                   "pick another project name")
                project.name = new_name
            if change.description is not None:
                project.description = change.description or None
            experiment_id = project.mlflow_experiment_id
            try:
                session.flush()
            except IntegrityError:
                raise _taken(str(new_name)) from None
            if new_name is not None and experiment_id is not None:
                # Before the commit: if MLflow refuses, the project keeps its old name.
                self.ctx.tracking.rename_experiment(experiment_id, new_name)
            session.commit()
            return _schema(session, project)

    def add_runs(self, name: str, run_ids: list[int]) -> list[int]:
        """Put runs in project ``name`` (out of any other), with their MLflow runs; all of
        them or none. The runs moved (those not in it yet)."""
        with self.ctx.sessions() as session:
            target = find(session, name, self.owners)
            if target.archived_at is not None:
                raise Conflict(f"project {name} is archived: it takes no runs; "
                               f"spell project unarchive {name} first")
            return self._move(session, target, runs_seen(session, run_ids, self.owners))

    def remove_runs(self, name: str, run_ids: list[int]) -> list[int]:
        """Take runs out of project ``name``: uncategorized again, their MLflow runs back in
        the uncategorized runs' experiment. Each must be in it; all of them or none."""
        with self.ctx.sessions() as session:
            project = find(session, name, self.owners)
            runs = runs_seen(session, run_ids, self.owners)
            for run in runs:
                if run.project_id != project.id:
                    raise InvalidInput(f"run {run.id} is not in project {name}; "
                                       f"spell ps -p {name} lists its runs")
            return self._move(session, None, runs)

    def _move(self, session: Session, target: db.Project | None,
              runs: list[db.Run]) -> list[int]:
        """Move ``runs`` into ``target`` (None: uncategorized) and commit."""
        target_id = target.id if target else None
        moving = [r for r in runs if r.project_id != target_id]
        for run in moving:
            if run.project_id is not None:
                source = session.get(db.Project, run.project_id)
                if source is not None and source.archived_at is not None:
                    raise Conflict(f"run {run.id} is in archived project {source.name}; "
                                   f"spell project unarchive {source.name} first")
        ids = [r.id for r in moving]
        if not ids:
            return []
        # A plain UPDATE: the runner's reports may change these rows at the same moment,
        # and the run's version (optimistic locking) is about its status, not its project.
        session.execute(update(db.Run).where(db.Run.id.in_(ids))
                        .values(project_id=target_id))
        mlflow_ids = [r.mlflow_run_id for r in moving if r.mlflow_run_id]
        # Before the commit: if MLflow fails, no run has moved in either place.
        self.ctx.tracking.move_runs(mlflow_ids, target.mlflow_experiment_id if target
                                    else None)
        session.commit()
        return ids


    def archive(self, name: str, archived: bool) -> Project:
        """Archive (out of `spell project list`, takes no runs; MLflow's UI hides its
        experiment) or unarchive. A project with active runs is not archived: MLflow would
        refuse their metrics once their experiment is deleted."""
        with self.ctx.sessions() as session:
            project = find(session, name, self.owners)
            if (project.archived_at is not None) == archived:
                return _schema(session, project)
            if archived:
                active = session.scalars(select(db.Run.id).where(
                    db.Run.project_id == project.id, db.Run.status.in_(ACTIVE))
                    .order_by(db.Run.id).limit(5)).all()
                if active:
                    listed = " ".join(str(i) for i in active)
                    raise Conflict(f"project {name} has active runs ({listed}); archive it "
                                   "once they have ended (spell stop RUN) or moved "
                                   f"(spell project remove-runs {name} RUN)")
            project.archived_at = db.utcnow() if archived else None
            session.flush()
            if project.mlflow_experiment_id is not None:
                self.ctx.tracking.archive_experiment(project.mlflow_experiment_id, archived)
            session.commit()
            return _schema(session, project)


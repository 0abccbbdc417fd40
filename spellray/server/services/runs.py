"""Runs: submit to Ray, read back, kill, stop, take the runner's reports, serve logs."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, raiseload

from spellray.cluster.machine_types import resolve_machine_type
from spellray.errors import (
    Conflict,
    InvalidInput,
    RayUnavailable,
    RunNotFound,
)
from spellray.schemas import (
    ACTIVE_STATUSES,
    DEFAULT_MAX_RESUMES,
    UNCATEGORIZED,
    CodeRef,
    Environment,
    EnvironmentLog,
    GitSource,
    LogChunk,
    MachineType,
    Mount,
    OutputFile,
    Run,
    RunList,
    RunRequest,
    RunStatus,
    StatusEvent,
    StatusReport,
    validate_label,
)
from spellray.server import db
from spellray.server.auth import ADMIN, Principal, issue_run_token
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by
from spellray.server.services import environments, projects
from spellray.server.services.idempotency import (
    CLAIM_ATTEMPTS,
    claim,
    reusable_run,
)
from spellray.server.services.long_poll import long_poll
from spellray.server.services.metrics import finish_tracking
from spellray.server.services.resume_rule import resume_pending
from spellray.server.services.run_preparation import (
    SPELL_DIR,
    PreparedRun,
    log_path,
    prepare_run,
    run_dir,
    write_record,
)
from spellray.server.services.run_queue import enqueue, job_env, waiting
from spellray.server.services.run_status import change_status, dequeue
from spellray.server.services.workflow_membership import (
    Membership,
    join_workflow,
    membership_for,
    share_with_workflow,
    visible_runs,
)

# Long-polled log requests: the most a request waits, and how often it looks meanwhile.
MAX_LOG_WAIT = 10.0
LOG_POLL_INTERVAL = 0.05
# How much of the environment build log `spell info` shows.
ENVIRONMENT_LOG_LINES = 40


def _not_found(run_id: int) -> RunNotFound:
    return RunNotFound(f"there is no run {run_id}; spell ps lists the runs")


def run_env(run_id: int, token: str, member: Membership | None) -> dict[str, str]:
    """Spell's variables inside a run: its number, its token, and its workflow's."""
    env = {"SPELL_RUN": str(run_id), "SPELL_TOKEN": token}
    if member is not None:
        env["SPELL_WORKFLOW_ID"] = str(member.workflow_id or run_id)
    return env


def to_schema(run: db.Run, labels: list[str] | None = None,
              history: list[StatusEvent] | None = None,
              project_names: dict[int, str] | None = None) -> Run:
    """The wire form of ``run``; ``labels``, ``history`` and ``project_names`` when the
    caller loaded them for many runs at once (``labels_and_histories``)."""
    spec = run.spec or {}
    project = None
    if run.project_id is not None:
        if project_names is None:
            project_names = projects.names_of(object_session(run), {run.project_id})
        project = project_names.get(run.project_id)
    code = None
    if run.code_sha256:
        code = CodeRef(sha256=run.code_sha256, git_commit=run.git_commit, git_dirty=run.git_dirty)
    return Run(
        id=run.id, kind=run.kind, status=RunStatus(run.status), status_reason=run.status_reason,
        exit_code=run.exit_code, command=run.command, machine_type=run.machine_type,
        env=spec.get("env", {}), params=spec.get("params", {}), description=run.description,
        labels=[label.label for label in run.labels] if labels is None else labels, code=code,
        mounts=[Mount.model_validate(m) for m in spec.get("mounts", [])],
        git=GitSource.model_validate(spec["git"]) if spec.get("git") else None,
        environment=Environment.model_validate(spec.get("environment") or {}),
        environment_digest=run.environment_digest,
        timeout_minutes=spec.get("timeout_minutes"),
        stop_conditions=spec.get("stop_conditions") or [], mlflow_run_id=run.mlflow_run_id,
        distributed=spec.get("distributed"), tensorboard_dir=spec.get("tensorboard_dir"),
        workflow_id=run.workflow_id, parent_run_id=run.parent_run_id, owner=run.owner,
        auto_resume=bool(spec.get("auto_resume")),
        max_resumes=spec.get("max_resumes", DEFAULT_MAX_RESUMES),
        resumed_from=spec.get("resumed_from"), resumed_as=spec.get("resumed_as"),
        resume_pending=resume_pending(run),
        project=project, archived_at=run.archived_at,
        ray_submission_id=run.ray_submission_id, created_at=run.created_at,
        started_at=run.started_at, ended_at=run.ended_at,
        history=[StatusEvent(status=RunStatus(e.status), reason=e.reason, at=e.at)
                 for e in run.events] if history is None else history,
    )


IN_SLICE = 500


def labels_and_histories(session: Session, run_ids: list[int]
                         ) -> tuple[dict[int, list[str]], dict[int, list[StatusEvent]]]:
    """Many runs' labels and status histories in two plain queries. A list loaded as ORM
    objects (the relationships' selectin) spent most of `spell ps`'s time making objects:
    profiled under the load test (tests/chaos/test_load.py), 20 clients polling."""
    labels: dict[int, list[str]] = {}
    histories: dict[int, list[StatusEvent]] = {}
    # In slices: `spell ps -n 0` may list more runs than a statement takes parameters.
    for start in range(0, len(run_ids), IN_SLICE):
        some = run_ids[start:start + IN_SLICE]
        for run_id, label in session.execute(
                select(db.RunLabel.run_id, db.RunLabel.label)
                .where(db.RunLabel.run_id.in_(some)).order_by(db.RunLabel.label)):
            labels.setdefault(run_id, []).append(label)
        for row in session.execute(
                select(db.RunEvent.run_id, db.RunEvent.status, db.RunEvent.reason,
                       db.RunEvent.at)
                .where(db.RunEvent.run_id.in_(some)).order_by(db.RunEvent.id)):
            histories.setdefault(row.run_id, []).append(
                StatusEvent(status=RunStatus(row.status), reason=row.reason, at=row.at))
    return labels, histories


def _with_queue(session: Session, runs: list[Run]) -> list[Run]:
    """The queued runs' positions, one query for all of them."""
    said = waiting(session, [r.id for r in runs if r.status == RunStatus.requested])
    for run in runs:
        run.waiting = said.get(run.id)
    return runs


class RunService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def _load(self, session: Session, run_id: int) -> db.Run:
        run = session.get(db.Run, run_id)
        if run is None:
            raise _not_found(run_id)
        return run

    # -- submit ---------------------------------------------------------------------------
    def machine_type(self, name: str) -> MachineType:
        return resolve_machine_type(name, self.ctx.machine_types)

    def prepare(self, request: RunRequest, owner: str = FIRST_ADMIN) -> PreparedRun:
        return prepare_run(self.ctx, request, owner)

    def base_env_vars(self, request: RunRequest, token: str) -> dict[str, str]:
        """The job's environment, for a run's runner and a search's driver alike."""
        return job_env(self.ctx, request.env, token)

    def create(self, request: RunRequest, principal: Principal = ADMIN) -> Run:
        """A run; made with a workflow manager's token, a child of that workflow (on the
        snapshot ``commit_label`` names, if any)."""
        with self.ctx.sessions() as session:
            member, request = membership_for(session, principal, request)
        return self.submit(request, member, owner=principal.owner or FIRST_ADMIN)

    def submit(self, request: RunRequest, member: Membership | None = None,
               kind: str | None = None, record_extra: dict[str, Any] | None = None,
               owner: str = FIRST_ADMIN,
               resumed_from: tuple[int, int] | None = None) -> Run:
        """Make the run and queue it. ``kind``: "workspace" for a workspace's run (the
        workflow kind comes from ``member``); ``record_extra``: what else the runner reads
        in run.json (a workspace's Jupyter options); ``owner``: whose (a workflow's child
        is its workflow's, whatever is given); ``resumed_from``: (the interrupted run this
        one resumes, how many resumes its chain has made with this one)."""
        prepared = self.prepare(request, owner)
        if resumed_from is not None:  # services/resume.py
            prepared = replace(prepared, spec={**prepared.spec, "resumed_from": resumed_from[0],
                                               "resume_count": resumed_from[1]})
        kind = kind or ("workflow" if member and member.manager else "run")
        local = bool(member and member.local)  # --local: the manager runs on the user's machine
        not_reachable: RayUnavailable | None = None
        if not local:
            try:  # said now, not when the run's turn comes; asked before the DB's lock is held
                self.ctx.ray.reachable()
            except RayUnavailable as exc:
                not_reachable = exc

        def queue(session: Session, run: db.Run) -> None:
            # In the run's own transaction: a server killed between the run's commit and its
            # queueing left a run that never ran and was failed a minute later ("never
            # submitted to Ray"), though its client had been told nothing and retried
            # (tests/chaos/test_server_faults.py). Now the run and its place in the queue
            # are committed together, or neither is.
            write_record(self.ctx.storage, run.id, request, prepared, record_extra)
            if resumed_from is not None:  # the chain both ways, in the new run's transaction
                old = session.get(db.Run, resumed_from[0])
                old.spec = {**(old.spec or {}), "resumed_as": run.id}
            if local:
                return
            if not_reachable is not None:
                change_status(session, run, RunStatus.failed,
                              f"not submitted: {not_reachable.message}")
                return
            enqueue(session, run, *self._queue_entry(run.id, request, prepared, kind, member))

        with self.ctx.sessions() as session:
            project_id = projects.project_of_new_run(session, request, member, owner,
                                                     resumed_from)
        run_id, token = self._insert(request, prepared, kind=kind, member=member,
                                     before_commit=queue, owner=owner, project_id=project_id)
        if token is None:  # --idempotent found its twin
            if member is not None and not member.manager:
                with self.ctx.sessions() as session:  # a step of an earlier workflow
                    share_with_workflow(session, run_id, member)
                    session.commit()
            return self.get(run_id).model_copy(update={"reused": True})
        if not_reachable is not None:
            raise not_reachable
        if local:
            return self.get(run_id).model_copy(update={"reused": False})
        self.ctx.wake.set()  # the queue may start it now
        return self.get(run_id)

    def _queue_entry(self, run_id: int, request: RunRequest, prepared: PreparedRun,
                     kind: str, member: Membership | None
                     ) -> tuple[MachineType, MachineType, int, dict[str, Any]]:
        """``enqueue``'s arguments for a new run: what it holds, what must fit, its job."""
        python = environments.python_command(prepared.ray_env)
        entrypoint = (f"{python} -m spellray.runner {run_id} "
                      f"--storage {shlex.quote(self.ctx.storage.uri)}")
        # Only what is no secret is queued: the token and storage credentials come at launch.
        env = {**request.env, "SPELLRAY_RUN_ID": str(run_id),
               **{k: v for k, v in run_env(run_id, "", member).items() if k != "SPELL_TOKEN"}}
        room = held = prepared.machine_type
        if request.distributed or kind == "workflow":
            # The runner holds nothing: a distributed run's ranks' bundles hold the type,
            # and a workflow's manager must not starve the children it waits for. Neither
            # waits in the queue: a manager's children queue behind it, and the ranks'
            # placement group waits inside a started job (no start timeout there), where
            # the runner says what is missing, or fails at once if it can never fit.
            room = held = MachineType(
                name=room.name, num_cpus=0, num_gpus=0 if request.distributed else
                room.num_gpus, resources={} if request.distributed else room.resources)
        return held, room, 1, {"entrypoint": entrypoint, "runtime_env": prepared.ray_env,
                               "env": env}

    def create_trial(self, request: RunRequest, search_id: int,
                     driver_submission_id: str | None,
                     owner: str = FIRST_ADMIN) -> tuple[int, str, dict]:
        """A search's trial: a run made like any other, executed by the search's driver job
        (its Ray submission id is the driver's); (run id, its token, its record). Made when
        its Tune trial starts, so it is `building` from the start."""
        prepared = self.prepare(request, owner)
        with self.ctx.sessions() as session:
            project_id = projects.project_of_new_run(session, request, None, owner,
                                                     trial=True)
        run_id, token = self._insert(request, prepared, kind="trial",
                                     hyper_search_id=search_id,
                                     ray_submission_id=driver_submission_id, owner=owner,
                                     project_id=project_id)
        assert token is not None  # trials are never --idempotent
        record = write_record(self.ctx.storage, run_id, request, prepared)
        with self.ctx.sessions() as session:
            change_status(session, self._load(session, run_id), RunStatus.building)
            session.commit()
        return run_id, token, record

    def _insert(self, request: RunRequest, prepared: PreparedRun, kind: str = "run",
                hyper_search_id: int | None = None,
                ray_submission_id: str | None = None,
                member: Membership | None = None,
                before_commit: Callable[[Session, db.Run], None] | None = None,
                owner: str = FIRST_ADMIN,
                project_id: int | None = None) -> tuple[int, str | None]:
        """Add the run row; return (run id, its token), or (the twin's id, None) when
        --idempotent finds an identical active or complete run. ``before_commit`` runs in
        the row's transaction (a lost --idempotent race rolls back what it did too)."""
        code, git, identity = request.code, prepared.git, prepared.identity
        for _ in range(CLAIM_ATTEMPTS):
            with self.ctx.sessions() as session:
                if request.idempotent and (twin := reusable_run(session, identity)):
                    return twin.id, None
                run = db.Run(
                    kind=kind, command=prepared.command,
                    machine_type=prepared.machine_type.name,
                    status=RunStatus.requested.value, description=request.description,
                    spec=prepared.spec, code_sha256=code and code.sha256,
                    git_commit=git.commit if git else code and code.git_commit,
                    git_dirty=code and code.git_dirty, environment_digest=prepared.env_digest,
                    identity=identity, hyper_search_id=hyper_search_id,
                    ray_submission_id=ray_submission_id, owner=owner, project_id=project_id,
                )
                run.labels = [db.RunLabel(label=label) for label in request.labels]
                session.add(run)
                session.flush()  # the DB allocates the run number here
                if request.idempotent and not claim(session, identity, run.id):
                    session.rollback()  # the run row goes too: no number is used up
                    continue
                session.add(db.RunEvent(run_id=run.id, status=run.status))
                if member is not None:  # in the same transaction as a stop's cascade
                    join_workflow(session, run, member)
                token = issue_run_token(session, run.id, run.workflow_id)
                if before_commit is not None:
                    before_commit(session, run)
                try:
                    session.commit()
                except IntegrityError:  # another submission claimed this identity first
                    session.rollback()
                    continue
                return run.id, token
        raise Conflict("identical --idempotent submissions kept colliding; try again")

    def _finish(self, run_id: int, status: RunStatus, reason: str) -> None:
        with self.ctx.sessions() as session:
            change_status(session, self._load(session, run_id), status, reason)
            session.commit()

    # -- read -----------------------------------------------------------------------------
    def get(self, run_id: int) -> Run:
        with self.ctx.sessions() as session:
            return _with_queue(session, [to_schema(self._load(session, run_id))])[0]

    def list(self, limit: int, label: str | None, principal: Principal = ADMIN,
             workflow_id: int | None = None, include_workspaces: bool = False, *,
             status: RunStatus | None = None, text: str | None = None,
             hyper_search_id: int | None = None, offset: int = 0,
             project: str | None = None, archived: bool = False) -> RunList:
        """Runs, newest first; workspaces' runs only with ``include_workspaces`` (Spell's
        `spell ps` does not list workspaces, `--all` does). ``text``: in the command;
        ``offset``: skip that many (a page of the console); ``project``: a project's runs
        ("uncategorized": those in none); ``archived``: the archived runs instead of the
        others."""
        with self.ctx.sessions() as session:
            query = select(db.Run).where(db.Run.archived_at.is_not(None) if archived
                                         else db.Run.archived_at.is_(None))
            if project == UNCATEGORIZED:
                query = query.where(db.Run.project_id.is_(None))
            elif project is not None:
                owners = principal.owners if principal.is_user else None
                query = query.where(
                    db.Run.project_id == projects.find(session, project, owners).id)
            if not include_workspaces:
                query = query.where(db.Run.kind != "workspace")
            if principal.is_user:  # a user's: their own and their teams' (admin: all)
                query = query.where(owned_by(db.Run.owner, principal.owners))
            elif not principal.sees_all:  # a run's, workflow's, search's: what it may see
                query = query.where(visible_runs(session, principal))
            if workflow_id is not None:
                query = query.where(db.Run.workflow_id == workflow_id)  # its own runs
            if label:
                query = query.join(db.RunLabel).where(db.RunLabel.label == label)
            if status is not None:
                query = query.where(db.Run.status == status.value)
            if text:
                # Case-insensitive on every DB (SQLite's LIKE is, Postgres's is not).
                query = query.where(db.Run.command.icontains(text, autoescape=True))
            if hyper_search_id is not None:
                query = query.where(db.Run.hyper_search_id == hyper_search_id)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            query = (query.order_by(db.Run.id.desc()).offset(offset)
                     .options(raiseload(db.Run.labels), raiseload(db.Run.events)))
            if limit > 0:
                query = query.limit(limit)
            rows = session.scalars(query).all()
            labels, histories = labels_and_histories(session, [r.id for r in rows])
            names = projects.names_of(session, {r.project_id for r in rows if r.project_id})
            runs = [to_schema(r, labels.get(r.id, []), histories.get(r.id, []), names)
                    for r in rows]
            return RunList(runs=_with_queue(session, runs), total=total)

    def environment_log(self, run_id: int, lines: int = ENVIRONMENT_LOG_LINES) -> EnvironmentLog:
        """What Ray's runtime_env set-up says about this run's environment, last lines."""
        run = self.get(run_id)
        if run.environment_digest is None:
            return EnvironmentLog(text="")
        fields = environments.runtime_env(run.environment, self.ctx.abilities)
        marker = environments.setup_marker(fields)
        if marker is None:
            return EnvironmentLog(text="")
        text, source = self.ctx.ray.environment_setup_log(marker)
        return EnvironmentLog(text="".join(text.splitlines(keepends=True)[-lines:]),
                              source=source)

    def outputs(self, run_id: int) -> list[OutputFile]:
        self.get(run_id)
        prefix = run_dir(run_id) + "/"
        return [
            OutputFile(path=e.path[len(prefix):], size=e.size)
            for e in self.ctx.storage.list(run_dir(run_id), recursive=True)
            if not e.is_dir and not e.path[len(prefix):].startswith(SPELL_DIR + "/")
        ]

    def logs(self, run_id: int, offset: int, wait: float = 0) -> LogChunk:
        """The log from byte ``offset``. With ``wait``, hold the request (long poll) until
        there is new text or the run ends, so followers hear of both at once."""
        return long_poll(lambda: self._log_chunk(run_id, offset),
                         lambda chunk: bool(chunk.text or chunk.finished),
                         min(wait, MAX_LOG_WAIT), LOG_POLL_INTERVAL)

    def _log_chunk(self, run_id: int, offset: int) -> LogChunk:
        # Only the columns a log chunk needs: a long poll asks this 20 times a second.
        with self.ctx.sessions() as session:
            row = session.execute(
                select(db.Run.status, db.Run.status_reason, db.Run.exit_code,
                       db.Run.ray_submission_id).where(db.Run.id == run_id)
            ).one_or_none()
        if row is None:
            raise _not_found(run_id)
        status = RunStatus(row.status)
        terminal = status.is_terminal
        size = self.ctx.storage.size(log_path(run_id))
        if size is None:
            # The runner never wrote a log (it died early): Ray's own log is all there is.
            text = ""
            if terminal and row.ray_submission_id:
                text = self.ctx.ray.logs(row.ray_submission_id)
            data, size = text.encode()[offset:], offset
        else:
            data = self.ctx.storage.read_bytes(log_path(run_id), offset) if offset < size else b""
            if not terminal:
                data = data[: data.rfind(b"\n") + 1]  # whole lines only while the run writes
        new_offset = offset + len(data)
        return LogChunk(text=data.decode(errors="replace"), offset=new_offset, status=status,
                        status_reason=row.status_reason, exit_code=row.exit_code,
                        finished=terminal and new_offset >= size)

    # -- change ---------------------------------------------------------------------------
    def kill(self, run_id: int) -> Run:
        """End now; the runner sees the run is killed and saves no outputs."""
        return self._end(run_id, "kill", RunStatus.killed)

    def stop(self, run_id: int) -> Run:
        """End and save outputs: the runner gets SIGTERM, saves, and reports `stopped`."""
        return self._end(run_id, "stop", None)

    def _end(self, run_id: int, how: str, status_now: RunStatus | None) -> Run:
        """End a run; a workflow's manager takes every active run of its workflow with it,
        in one transaction: a child being created at that moment either is in it or is
        refused (services/workflow_membership.py)."""
        with self.ctx.sessions() as session:
            run = self._load(session, run_id)
            if RunStatus(run.status).is_terminal:
                raise Conflict(f"run {run_id} has already ended ({run.status})")
            run.stop_requested = how
            session.flush()  # the manager's row first: children being made wait behind it
            ending = [run]
            if run.kind == "workflow":
                ending += session.scalars(select(db.Run).where(
                    db.Run.workflow_id == run.id, db.Run.id != run.id,
                    db.Run.status.in_([s.value for s in ACTIVE_STATUSES]))).all()
            ended: list[tuple[int, str | None, str, bool]] = []
            for item in ending:
                item.stop_requested = how
                now = status_now
                if now is None and (item.spec or {}).get("local"):
                    now = RunStatus.stopped  # a --local manager has no runner to save
                if dequeue(session, item.id) and now is None:
                    now = RunStatus.stopped  # queued: no Ray job, nothing to save
                if now is not None:
                    reason = f"{how}ed by user" if item is run else f"its workflow was {how}ed"
                    change_status(session, item, now, reason)
                ended.append((item.id, item.ray_submission_id, item.status, now is not None))
            session.commit()
        for item_id, submission_id, status, now_ended in ended:
            if now_ended:
                finish_tracking(self.ctx, item_id, status)
            if submission_id:
                self.ctx.ray.stop(submission_id)
        return self.get(run_id)

    def report(self, run_id: int, report: StatusReport) -> Run:
        with self.ctx.sessions() as session:
            run = self._load(session, run_id)
            changed = change_status(session, run, report.status, report.reason,
                                    report.exit_code)
            session.commit()
            result = to_schema(run)
        if changed and report.status.is_terminal:
            self.ctx.wake.set()  # its room frees: the queue may move
            finish_tracking(self.ctx, run_id, report.status.value)
        return result

    def set_label(self, run_id: int, label: str, present: bool) -> Run:
        try:
            validate_label(label)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        with self.ctx.sessions() as session:
            run = self._load(session, run_id)
            existing = {item.label: item for item in run.labels}
            if present and label not in existing:
                run.labels.append(db.RunLabel(run_id=run_id, label=label))
            elif not present and label in existing:
                run.labels.remove(existing[label])
            session.commit()
            return to_schema(run)

"""Hyperparameter searches: submit the driver job, make each trial a run, stop, kill, report.

A search is one Ray job (`python -m spellray.tune.driver ID`) in the environment its trials
need, so Ray builds that environment once and every trial actor inherits it. The driver
asks this service for a run per trial as Tune starts it (``start_trial``); a trial's run
carries the driver's Ray submission id, which is how the reconciler ends trials whose
driver died.
"""

from __future__ import annotations

import csv
import io
import logging
import statistics

from sqlalchemy import select
from sqlalchemy.orm import Session

from spellray.errors import Conflict, InvalidInput, NotFound, RayRefused, SpellrayError
from spellray.schemas import (
    ACTIVE_STATUSES,
    HyperList,
    HyperRequest,
    HyperSearch,
    HyperStatusReport,
    RunStatus,
    SearchStatus,
)
from spellray.server import db
from spellray.server.auth import issue_search_token
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by
from spellray.server.services import environments
from spellray.server.services.hyper_status import change_search_status
from spellray.server.services.metrics import MetricService
from spellray.server.services.projects import for_new_run
from spellray.server.services.run_status import change_status
from spellray.server.services.runs import RunService
from spellray.tune.space import check_command, grid_size

log = logging.getLogger(__name__)

# A grid bigger than this is almost surely a typo (and would flood the run list).
MAX_GRID = 10_000


def _not_found(search_id: int) -> NotFound:
    return NotFound(f"there is no search {search_id}; spell hyper list shows them")


def to_schema(search: db.HyperSearch, run_ids: list[int]) -> HyperSearch:
    spec = HyperRequest.model_validate(search.spec)
    return HyperSearch(
        id=search.id, kind=search.kind, status=search.status,
        status_reason=search.status_reason, command=spec.run.command, params=spec.params,
        num_runs=spec.num_runs, parallel=spec.parallel, metric=spec.metric,
        aggregation=spec.aggregation, mode=spec.mode, early_stop=spec.early_stop,
        max_concurrent=spec.max_concurrent, run_ids=run_ids,
        ray_submission_id=search.ray_submission_id, archived=search.archived,
        created_at=search.created_at, ended_at=search.ended_at, owner=search.owner)


def validate(request: HyperRequest) -> list[str]:
    """Everything that can be wrong with a search before anything runs; the warnings."""
    warnings = check_command(request.run.command, request.params)
    if request.run.params:
        raise InvalidInput("a search's params come from its --param specs, not run params")
    if request.kind == "grid":
        if any(p.is_range for p in request.params):
            raise InvalidInput("a grid takes value lists, not ranges")
        if request.num_runs is not None:
            raise InvalidInput("a grid runs every combination: -n is for random / bayesian")
        if grid_size(request.params) > MAX_GRID:
            raise InvalidInput(f"the grid has {grid_size(request.params)} points, over "
                               f"{MAX_GRID}: use spell hyper random -n N")
    elif request.num_runs is None:
        raise InvalidInput(f"spell hyper {request.kind} needs -n/--num-runs N (at least 1)")
    if request.kind == "bayesian" and not request.metric:
        raise InvalidInput("spell hyper bayesian needs --metric NAME to optimize")
    if request.early_stop and not request.metric:
        raise InvalidInput("--early-stop needs --metric NAME to judge the trials by")
    if request.kind == "random" and request.parallel is not None:
        raise InvalidInput("-r/--parallel is for bayesian searches; use --max-concurrent")
    return warnings


class HyperService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.runs = RunService(ctx)

    def _load(self, session: Session, search_id: int) -> db.HyperSearch:
        search = session.get(db.HyperSearch, search_id)
        if search is None:
            raise _not_found(search_id)
        return search

    def _run_ids(self, session: Session, search_id: int) -> list[int]:
        return list(session.scalars(select(db.Run.id).where(
            db.Run.hyper_search_id == search_id).order_by(db.Run.id)))

    def get(self, search_id: int) -> HyperSearch:
        with self.ctx.sessions() as session:
            return to_schema(self._load(session, search_id), self._run_ids(session, search_id))

    def list(self, archived: bool = False, owners: frozenset[str] | None = None) -> HyperList:
        """Searches, newest first; only ``owners``' (None: everyone's)."""
        with self.ctx.sessions() as session:
            query = select(db.HyperSearch).where(owned_by(db.HyperSearch.owner, owners)) \
                .order_by(db.HyperSearch.id.desc())
            if not archived:
                query = query.where(db.HyperSearch.archived.is_(False))
            return HyperList(searches=[to_schema(s, self._run_ids(session, s.id))
                                       for s in session.scalars(query)])

    # -- submit ---------------------------------------------------------------------------
    def create(self, request: HyperRequest, owner: str = FIRST_ADMIN) -> HyperSearch:
        validate(request)
        if request.run.distributed:  # a trial runs inside a Tune actor: no group of its own
            raise InvalidInput("--distributed is not supported by spell hyper: its trials "
                               "run as single processes; start distributed runs with spell run")
        # The run every trial is made from, checked now: code, environment, mounts.
        prepared = self.runs.prepare(request.run, owner)
        with self.ctx.sessions() as session:
            if request.run.project is not None:  # its trials go there: checked now, once
                for_new_run(session, request.run.project, owner)
            search = db.HyperSearch(kind=request.kind, status=SearchStatus.running.value,
                                    spec=request.model_dump(mode="json"), owner=owner)
            session.add(search)
            session.flush()
            session.add(db.HyperSearchEvent(hyper_search_id=search.id, status=search.status))
            token = issue_search_token(session, search.id)
            session.commit()
            search_id = search.id
        submission_id = f"spellray-{self.ctx.server_id[:12]}-search-{search_id}"
        python = environments.python_command(prepared.ray_env)
        entrypoint = f"{python} -m spellray.tune.driver {search_id}"
        env_vars = {**self.runs.base_env_vars(request.run, token), "SPELLRAY_SEARCH_ID":
                    str(search_id)}
        try:
            # The driver itself needs no CPU: its trials reserve the machine type's.
            self.ctx.ray.submit(submission_id, entrypoint,
                                {**prepared.ray_env, "env_vars": env_vars}, 0, 0, {})
        except SpellrayError as exc:  # Ray unreachable
            self._end(search_id, SearchStatus.failed, f"not submitted: {exc.message}")
            raise
        except Exception as exc:  # Ray refused the job: the search ends now, with Ray's words
            self._end(search_id, SearchStatus.failed, f"not submitted: Ray said: {exc}")
            raise RayRefused(f"Ray refused search {search_id}: {exc}") from exc
        with self.ctx.sessions() as session:
            search = self._load(session, search_id)
            search.ray_submission_id = submission_id
            session.commit()
        return self.get(search_id)

    def spec(self, search_id: int) -> dict:
        """What the driver needs: the search, the storage, the trials' resources."""
        with self.ctx.sessions() as session:
            search = self._load(session, search_id)
            spec = HyperRequest.model_validate(search.spec)
        machine_type = self.runs.machine_type(spec.run.machine_type)
        return {"id": search_id, **spec.model_dump(mode="json", exclude={"run"}),
                "storage_uri": self.ctx.storage.uri,
                "resources": {"num_cpus": machine_type.num_cpus,
                              "num_gpus": machine_type.num_gpus,
                              "resources": machine_type.resources}}

    def start_trial(self, search_id: int, params: dict[str, str]) -> dict:
        """A run for a trial Tune is starting now, in the trial's actor: so the run is
        `building` at once, and the answer holds everything its runner would otherwise ask
        for one request at a time (its record, its MLflow run)."""
        with self.ctx.sessions() as session:
            search = self._load(session, search_id)
            if search.status != SearchStatus.running.value:
                raise Conflict(f"search {search_id} is {search.status}: no new trials")
            spec = HyperRequest.model_validate(search.spec)
            submission_id, owner = search.ray_submission_id, search.owner
        names = {p.name for p in spec.params}
        if set(params) != names:
            raise InvalidInput(f"a trial of search {search_id} takes exactly the params "
                               f"{', '.join(sorted(names))}")
        request = spec.run.model_copy(update={"params": params, "idempotent": False})
        # A trial is its search's owner's.
        run_id, token, record = self.runs.create_trial(request, search_id, submission_id,
                                                       owner or FIRST_ADMIN)
        return {"run_id": run_id, "token": token, "record": record,
                "tracking": self._tracking(run_id)}

    def _tracking(self, run_id: int) -> dict | None:
        """The trial's MLflow run, made now; None if MLflow fails (the runner asks again,
        as any run's does)."""
        try:
            return MetricService(self.ctx).tracking_info(run_id).model_dump()
        except Exception:
            log.exception("could not make the MLflow run of trial %s", run_id)
            return None

    # -- end ------------------------------------------------------------------------------
    def _end(self, search_id: int, status: SearchStatus, reason: str | None = None) -> None:
        with self.ctx.sessions() as session:
            change_search_status(session, self._load(session, search_id), status, reason)
            session.commit()

    def report(self, search_id: int, report: HyperStatusReport) -> HyperSearch:
        self._end(search_id, SearchStatus(report.status), report.reason)
        return self.get(search_id)

    def stop(self, search_id: int) -> HyperSearch:
        """Gracefully: the driver sees `stopping`, Tune stops every running trial, and each
        trial saves its outputs; no new trial starts."""
        with self.ctx.sessions() as session:
            search = self._load(session, search_id)
            if SearchStatus(search.status).is_terminal:
                raise Conflict(f"search {search_id} has already ended ({search.status})")
            change_search_status(session, search, SearchStatus.stopping)
            session.commit()
        return self.get(search_id)

    def kill(self, search_id: int) -> HyperSearch:
        """At once: the driver's Ray job is stopped, and every active trial is killed
        (outputs not saved)."""
        with self.ctx.sessions() as session:
            search = self._load(session, search_id)
            if SearchStatus(search.status).is_terminal:
                raise Conflict(f"search {search_id} has already ended ({search.status})")
            submission_id = search.ray_submission_id
            for run in session.scalars(select(db.Run).where(
                    db.Run.hyper_search_id == search_id,
                    db.Run.status.in_([s.value for s in ACTIVE_STATUSES]))):
                run.stop_requested = "kill"
                change_status(session, run, RunStatus.killed, "its search was killed")
            session.commit()
        self._end(search_id, SearchStatus.killed, "killed by user")
        if submission_id:
            self.ctx.ray.stop(submission_id)
        return self.get(search_id)

    def archive(self, search_id: int) -> HyperSearch:
        with self.ctx.sessions() as session:
            search = self._load(session, search_id)
            if not SearchStatus(search.status).is_terminal:
                raise Conflict(f"search {search_id} is {search.status}: stop it first")
            search.archived = True
            session.commit()
        return self.get(search_id)

    def metrics_csv(self, search_id: int) -> str:
        """One row per trial and metric: the trial's params and the metric's summary."""
        search = self.get(search_id)
        names = [p.name for p in search.params]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["search", "run", "status", *names, "metric", "count", "last", "min",
                         "max", "avg"])
        metrics = MetricService(self.ctx)
        for run_id in search.run_ids:
            run = self.runs.get(run_id)
            for summary in metrics.list(run_id):
                values = [p.value for p in metrics.series(run_id, summary.name).values
                          if not isinstance(p.value, str)]  # a text metric has no mean
                writer.writerow([search_id, run_id, run.status.value,
                                 *[run.params.get(n, "") for n in names], summary.name,
                                 summary.count, summary.last, _blank(summary.min),
                                 _blank(summary.max), statistics.fmean(values) if values else ""])
        return out.getvalue()


def _blank(value: float | None) -> float | str:
    return "" if value is None else value

"""Which runs a TensorBoard shows, and where each one's event files are in storage.

A run's TensorBoard folder is its spec's ``tensorboard_dir`` (set by ``--tensorboard-dir``,
kept relative to the run's working folder); the runner copies it into storage at
``runs/<id>/<tensorboard_dir>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select

from spellray.errors import InvalidInput, NotFound, RunNotFound
from spellray.schemas import ACTIVE_STATUSES, SearchStatus
from spellray.server import db
from spellray.server.context import ServerContext

ACTIVE = frozenset(s.value for s in ACTIVE_STATUSES)
# Sets of up to this many runs are named by their numbers; longer ones by a digest.
NAMED_RUNS = 6


@dataclass(frozen=True)
class RunSet:
    """What a user asked to see: some runs, or every trial of a search (trials started
    later join while the search goes on)."""

    run_ids: tuple[int, ...] = ()
    search_id: int | None = None

    @property
    def set_id(self) -> str:
        if self.search_id is not None:
            return f"search-{self.search_id}"
        if len(self.run_ids) <= NAMED_RUNS:
            return "runs-" + "-".join(map(str, self.run_ids))
        digest = hashlib.sha256(",".join(map(str, self.run_ids)).encode()).hexdigest()
        return f"runs-{self.run_ids[0]}-and-{len(self.run_ids) - 1}-more-{digest[:10]}"


@dataclass(frozen=True)
class RunFolder:
    run_id: int
    source: str  # the folder in storage: runs/<id>/<tensorboard_dir>


@dataclass(frozen=True)
class Resolved:
    folders: list[RunFolder]
    active: bool  # any run (or the search) still going: the mirror keeps refreshing


def run_set(run_ids: list[int], search_id: int | None) -> RunSet:
    if search_id is not None and run_ids:
        raise InvalidInput("give runs or --search, not both")
    if search_id is None and not run_ids:
        raise InvalidInput("name at least one run (spell tensorboard RUN [RUN...]) "
                           "or a search (--search ID)")
    return RunSet(run_ids=tuple(sorted(set(run_ids))), search_id=search_id)


def resolve(ctx: ServerContext, wanted: RunSet, strict: bool = True) -> Resolved:
    """Each run's TensorBoard folder. ``strict``: a missing run, or one without a folder, is
    an error (when asked for); otherwise skipped (a refresh while runs come and go)."""
    with ctx.sessions() as session:
        search_active = False
        if wanted.search_id is not None:
            search = session.get(db.HyperSearch, wanted.search_id)
            if search is None:
                raise NotFound(f"there is no search {wanted.search_id}; "
                               "spell hyper ps lists the searches")
            search_active = not SearchStatus(search.status).is_terminal
            query = select(db.Run).where(db.Run.hyper_search_id == wanted.search_id)
        else:
            query = select(db.Run).where(db.Run.id.in_(wanted.run_ids))
        runs = {run.id: run for run in session.scalars(query.order_by(db.Run.id))}
        rows = [(run.id, run.status, (run.spec or {}).get("tensorboard_dir"))
                for run in runs.values()]
    if strict:
        if missing := [i for i in wanted.run_ids if i not in runs]:
            raise RunNotFound(f"there is no run {missing[0]}; spell ps lists the runs")
        if wanted.search_id is not None and not rows:
            raise NotFound(f"search {wanted.search_id} has no trials yet; try again once "
                           "one has started")
        if without := [run_id for run_id, _, folder in rows if not folder]:
            what = (f"the trials of search {wanted.search_id}" if wanted.search_id is not None
                    else f"run {without[0]}")
            raise InvalidInput(f"{what} has no TensorBoard folder: start runs with "
                               "--tensorboard-dir PATH (the folder your code writes event "
                               "files to)")
    folders = [RunFolder(run_id, f"runs/{run_id}/{folder.strip('/')}")
               for run_id, _, folder in rows if folder]
    return Resolved(folders=folders,
                    active=search_active or any(status in ACTIVE for _, status, _ in rows))

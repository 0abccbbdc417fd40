"""Searches from Python: ``spellray.hyper.grid(command, params={...}, **run_options)``.

    search = spellray.hyper.grid("python train.py --rate :rate:",
                                 params={"rate": [0.001, 0.01, 0.1]}, pip=["scikit-learn"])
    search.wait()
    best = search.best_run("accuracy", mode="max")

``run_options`` are those of ``client.runs.new`` (machine_type, mounts, env, pip, apt, ...).
Inside a run (a workflow) the searches go to the same server, with the run's token.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from spellray.schemas import HyperSearch, Run, SearchStatus

if TYPE_CHECKING:
    from spellray.client import Client


class Search:
    """A running or finished search, as the Python API hands it back."""

    def __init__(self, client: Client, search: HyperSearch) -> None:
        self.client = client
        self.id = search.id
        self._search = search

    def refresh(self) -> HyperSearch:
        self._search = self.client.hyper.get(self.id)
        return self._search

    @property
    def status(self) -> str:
        return self.refresh().status

    def wait(self, poll: float = 1.0, timeout: float | None = None) -> HyperSearch:
        """Until the search has ended and each of its runs too."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            search = self.refresh()
            if SearchStatus(search.status).is_terminal and all(
                    self.client.runs.get(r).status.is_terminal for r in search.run_ids):
                return search
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"search {self.id} is still {search.status}")
            time.sleep(poll)

    @property
    def runs(self) -> list[Run]:
        return [self.client.runs.get(run_id) for run_id in self.refresh().run_ids]

    def best_run(self, metric: str, mode: str = "max", aggregation: str = "last") -> Run | None:
        """The trial whose ``metric`` (aggregated over its series) is best; None if no
        trial reported it."""
        if mode not in ("max", "min"):
            raise ValueError("mode is 'max' or 'min'")
        scored = [(value, run) for run in self.runs
                  if (value := self.client.metrics.score(run.id, metric, aggregation))
                  is not None]
        if not scored:
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda item: item[0])[1]

    def stop(self) -> HyperSearch:
        return self.client.hyper.stop(self.id)

    def kill(self) -> HyperSearch:
        return self.client.hyper.kill(self.id)


def _start(kind: str, command: str, params: dict[str, Any], *, client: Any = None,
           **options: Any) -> Search:
    """``options``: those of ``client.hyper.start`` (the search's, then the run's)."""
    from spellray.client import from_environment

    client = client or from_environment()
    return Search(client, client.hyper.start(kind, command, params, **options))


def grid(command: str, params: dict[str, list[Any]], **options: Any) -> Search:
    """One run per combination of the value lists."""
    return _start("grid", command, params, **options)


def random(command: str, params: dict[str, Any], num_runs: int, **options: Any) -> Search:
    """``num_runs`` runs, each value drawn from its list or range ("MIN:MAX[:scale[:type]]")."""
    return _start("random", command, params, num_runs=num_runs, **options)


def bayesian(command: str, params: dict[str, Any], num_runs: int, metric: str,
             parallel: int = 1, **options: Any) -> Search:
    """``num_runs`` runs chosen by Optuna to make ``metric`` best, ``parallel`` at a time."""
    return _start("bayesian", command, params, num_runs=num_runs, metric=metric,
                  parallel=parallel, **options)

"""The SDK's hyperparameter searches: ``client.hyper`` (HTTP), and the ``Search`` handle
that `spellray.hyper.grid/random/bayesian` return."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from spellray.schemas import (
    HyperList,
    HyperRequest,
    HyperSearch,
    HyperStatusReport,
    Run,
    TrialStart,
)
from spellray.tune.space import ParamSpec, parse_json_param, parse_param, values_param

if TYPE_CHECKING:
    from spellray.client import Client, Runs, _Api

TERMINAL = ("complete", "stopped", "killed", "failed")


def param_specs(kind: str, params: dict[str, Any] | list[str] | None = None,
                json_params: list[str] | None = None) -> list[ParamSpec]:
    """Spell's ``NAME=...`` strings, or a dict: NAME -> list of values (every kind) or a
    range string "MIN:MAX[:scale[:type]]" (random / bayesian)."""
    specs: list[ParamSpec] = []
    if isinstance(params, dict):
        for name, value in params.items():
            if isinstance(value, list | tuple):  # as given: a value may hold a comma
                specs.append(values_param(name, list(value)))
            else:
                specs.append(parse_param(f"{name}={value}", kind))  # type: ignore[arg-type]
    else:
        specs += [parse_param(p, kind) for p in params or []]  # type: ignore[arg-type]
    specs += [parse_json_param(p) for p in json_params or []]
    return specs


def score(client: Client, run_id: int, metric: str, aggregation: str = "last") -> float | None:
    """A run's ``metric`` aggregated over its series (last, avg, min or max); None if the
    run never reported it."""
    if aggregation not in ("last", "avg", "min", "max"):
        raise ValueError("aggregation is one of last, avg, min, max")
    summary = next((s for s in client.metrics.list(run_id) if s.name == metric), None)
    if summary is None:
        return None
    if aggregation != "avg":
        return getattr(summary, aggregation)
    values = [p.value for p in client.metrics.get(run_id, metric).values]
    return sum(values) / len(values)


class HyperSearches:
    def __init__(self, api: _Api, runs: Runs) -> None:
        self._api = api
        self._runs = runs

    def start(self, kind: str, command: str, params: dict[str, Any] | list[str],
              json_params: list[str] | None = None, *, num_runs: int | None = None,
              parallel: int | None = None, metric: str | None = None,
              aggregation: str = "last", mode: str = "max", early_stop: bool = False,
              max_concurrent: int | None = None, **run_options: Any) -> HyperSearch:
        """Check the search here (the same checks the server makes), then submit it.
        ``run_options`` are those of ``client.runs.new``: the code is uploaded once and
        every trial runs it."""
        from spellray.errors import InvalidInput

        if num_runs is not None and num_runs < 1:
            raise InvalidInput("-n/--num-runs must be at least 1")
        run = self._runs.build_request(command, **run_options)
        try:
            request = HyperRequest(
                kind=kind, params=param_specs(kind, params, json_params), run=run,  # type: ignore[arg-type]
                num_runs=num_runs, parallel=parallel, metric=metric,
                aggregation=aggregation, mode=mode, early_stop=early_stop,  # type: ignore[arg-type]
                max_concurrent=max_concurrent)
        except ValidationError as exc:
            raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) \
                from exc
        return self.create(request)

    def create(self, request: HyperRequest) -> HyperSearch:
        return HyperSearch.model_validate(
            self._api.request("POST", "/api/hyper", json=request.model_dump(mode="json")))

    def get(self, search_id: int) -> HyperSearch:
        return HyperSearch.model_validate(self._api.request("GET", f"/api/hyper/{search_id}"))

    def list(self, archived: bool = False) -> HyperList:
        return HyperList.model_validate(
            self._api.request("GET", "/api/hyper", params={"archived": archived}))

    def spec(self, search_id: int) -> dict[str, Any]:
        return self._api.request("GET", f"/api/hyper/{search_id}/spec")

    def start_trial(self, search_id: int, params: dict[str, str]) -> dict[str, Any]:
        return self._api.request("POST", f"/api/hyper/{search_id}/trials",
                                 json=TrialStart(params=params).model_dump())

    def report(self, search_id: int, status: str, reason: str | None = None) -> HyperSearch:
        body = HyperStatusReport(status=status, reason=reason)  # type: ignore[arg-type]
        return HyperSearch.model_validate(self._api.request(
            "POST", f"/api/hyper/{search_id}/status", json=body.model_dump()))

    def _action(self, search_id: int, action: str) -> HyperSearch:
        return HyperSearch.model_validate(
            self._api.request("POST", f"/api/hyper/{search_id}/{action}"))

    def stop(self, search_id: int) -> HyperSearch:
        return self._action(search_id, "stop")

    def kill(self, search_id: int) -> HyperSearch:
        return self._action(search_id, "kill")

    def archive(self, search_id: int) -> HyperSearch:
        return self._action(search_id, "archive")

    def metrics_csv(self, search_id: int) -> str:
        with self._api.stream("GET", f"/api/hyper/{search_id}/metrics.csv") as response:
            return response.read().decode()


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
            if search.status in TERMINAL and all(
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
                  if (value := score(self.client, run.id, metric, aggregation)) is not None]
        if not scored:
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda item: item[0])[1]

    def stop(self) -> HyperSearch:
        return self.client.hyper.stop(self.id)

    def kill(self) -> HyperSearch:
        return self.client.hyper.kill(self.id)

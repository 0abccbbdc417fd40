"""The SDK's hyperparameter searches: ``client.hyper`` (HTTP). The ``Search`` handle that
``spellray.hyper.grid/random/bayesian`` return is in spellray/hyper.py."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from spellray.client._http import ResourceGroup, invalid_input
from spellray.client._run_request import build_run_request
from spellray.errors import InvalidInput
from spellray.schemas import HyperList, HyperRequest, HyperSearch, HyperStatusReport, TrialStart
from spellray.tune.space import ParamSpec, parse_json_param, parse_param, values_param


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


class HyperSearches(ResourceGroup):
    def start(self, kind: str, command: str, params: dict[str, Any] | list[str],
              json_params: list[str] | None = None, *, num_runs: int | None = None,
              parallel: int | None = None, metric: str | None = None,
              aggregation: str = "last", mode: str = "max", early_stop: bool = False,
              max_concurrent: int | None = None, **run_options: Any) -> HyperSearch:
        """Check the search here (the same checks the server makes), then submit it.
        ``run_options`` are those of ``client.runs.new``: the code is uploaded once and
        every trial runs it."""
        if num_runs is not None and num_runs < 1:
            raise InvalidInput("-n/--num-runs must be at least 1")
        run = build_run_request(self._api, command, **run_options)
        try:
            request = HyperRequest(
                kind=kind, params=param_specs(kind, params, json_params), run=run,  # type: ignore[arg-type]
                num_runs=num_runs, parallel=parallel, metric=metric,
                aggregation=aggregation, mode=mode, early_stop=early_stop,  # type: ignore[arg-type]
                max_concurrent=max_concurrent)
        except ValidationError as exc:
            raise invalid_input(exc) from exc
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

"""Spell's ``client.hyper``: grid, random and bayesian searches over spellray's
``client.hyper``, with ``spell.api.models.ValueSpec`` / ``RangeSpec`` parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spell.api.models import FLOAT, INT, LINEAR, LOG, REVERSE_LOG, RangeSpec, ValueSpec
from spell.api.record_view import RecordView
from spell.client.options import run_options
from spell.client.runs import Run, required_command
from spellray.client import Client
from spellray.errors import InvalidInput
from spellray.schemas import HyperSearch as SearchRecord

Spec = ValueSpec | RangeSpec


def _params(params: Mapping[str, Spec | list[Any]]) -> dict[str, Any]:
    """Spell's specs as spellray's: a list of values, or "MIN:MAX:SCALE:TYPE"."""
    if not isinstance(params, Mapping) or not params:
        raise InvalidInput("params: give a dict of parameter name to ValueSpec([...]) or "
                           "RangeSpec(min, max)")
    out: dict[str, Any] = {}
    for name, spec in params.items():
        if isinstance(spec, (ValueSpec, RangeSpec)):
            out[name] = spec.to_spellray()
        elif isinstance(spec, list | tuple):
            out[name] = list(spec)
        else:
            raise InvalidInput(f"params[{name!r}]: give a ValueSpec([...]) or a RangeSpec"
                               f"(min, max), not {spec!r}")
    return out


class HyperSearch(RecordView):
    """A search: ``id``, ``status``, ``runs`` (its trials as Run objects, as of the last
    ``refresh()``), ``stop()`` and ``kill()``. Other attributes read through to spellray's."""

    def __init__(self, client: Client, record: SearchRecord) -> None:
        super().__init__(client, record)
        self.runs: list[Run] = []
        self._load_runs()

    @property
    def id(self) -> int:
        return self._record.id

    @property
    def status(self) -> str:
        return self._record.status

    def _load_runs(self) -> None:
        self.runs = [Run(self._client, self._client.runs.get(i)) for i in self._record.run_ids]

    def refresh(self) -> None:
        self._record = self._client.hyper.get(self.id)
        self._load_runs()

    def stop(self) -> None:
        """No new trials; running ones stop, saving their outputs."""
        self._record = self._client.hyper.stop(self.id)

    def kill(self) -> None:
        self._record = self._client.hyper.kill(self.id)


class HyperService:
    """Spell's ``client.hyper``. ``**kwargs`` of every search are ``client.runs.new``'s."""

    LINEAR, LOG, REVERSE_LOG, FLOAT, INT = LINEAR, LOG, REVERSE_LOG, FLOAT, INT

    def __init__(self, client: Client) -> None:
        self._client = client

    def _start(self, kind: str, params: Mapping[str, Spec], search: dict[str, Any],
               kwargs: dict[str, Any]) -> HyperSearch:
        if kwargs.get("params"):
            raise InvalidInput("params: a search's trials take theirs from the search's "
                               "parameters (its first argument), not params=")
        kwargs.pop("params", None)
        options = run_options(command=required_command(kwargs.pop("command", None)), **kwargs)
        command = options.pop("command")
        del options["params"]  # spellray's search fills each trial's
        record = self._client.hyper.start(kind, command, _params(params), **search, **options)
        return HyperSearch(self._client, record)

    def get(self, search_id: int) -> HyperSearch:
        return HyperSearch(self._client, self._client.hyper.get(search_id))

    def new_grid_search(self, params: Mapping[str, ValueSpec], **kwargs: Any) -> HyperSearch:
        """One run per combination of the values."""
        return self._start("grid", params, {}, kwargs)

    def new_random_search(self, params: Mapping[str, Spec], num_runs: int,
                          **kwargs: Any) -> HyperSearch:
        """``num_runs`` runs, each parameter drawn from its values or range."""
        return self._start("random", params, {"num_runs": num_runs}, kwargs)

    def new_bayesian_search(self, params: Mapping[str, RangeSpec], num_runs: int,
                            parallel_runs: int, metric: str, metric_agg: str,
                            **kwargs: Any) -> HyperSearch:
        """``num_runs`` runs, ``parallel_runs`` at a time, chosen to make ``metric``
        (aggregated by ``metric_agg``: last, avg, min or max) as large as it gets."""
        return self._start("bayesian", params, {
            "num_runs": num_runs, "parallel": parallel_runs, "metric": metric,
            "aggregation": metric_agg}, kwargs)

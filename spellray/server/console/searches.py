"""The console's hyperparameter searches: the list, and a search's page (its facts, its
trials best-first by its metric with their parameters, a chart of the metric per trial,
stop and kill). Everything goes through HyperService, RunService and MetricService, as
`spell hyper describe` and the API do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from spellray.errors import NotFound
from spellray.schemas import HyperSearch, Run
from spellray.schemas.base import DbId
from spellray.schemas.hyper import SearchStatus
from spellray.schemas.metrics import MetricValue
from spellray.schemas.metrics import score as score_of
from spellray.server.console.render import render
from spellray.server.console.runs import POLL_SECONDS
from spellray.server.console.viewer import viewer
from spellray.server.context import ServerContext
from spellray.server.services.hyper import HyperService
from spellray.server.services.metrics import MetricService
from spellray.server.services.runs import RunService

router = APIRouter()


@dataclass
class Trial:
    run: Run
    score: float | None  # the search's metric, aggregated as the search says; None: not yet


def _ctx(request: Request) -> ServerContext:
    return request.app.state.server.ctx


def space(search: HyperSearch) -> list[str]:
    """Each parameter's values or range, as `spell hyper describe` writes them."""
    return [f"{p.name}={','.join(p.values)}" if p.values is not None
            else f"{p.name}={p.min:g}:{p.max:g}:{p.scale}:{p.type}" for p in search.params]


def score(metrics: MetricService, run_id: int, name: str, aggregation: str) -> float | None:
    """What the SDK's ``metrics.score`` gives (the same function), from the service itself:
    a text metric, or one the run never sent, scores None."""
    def values() -> list[MetricValue]:
        try:
            return metrics.series(run_id, name).values
        except NotFound:
            return []

    return score_of(metrics.list(run_id), name, aggregation, values)


def trials(ctx: ServerContext, search: HyperSearch) -> list[Trial]:
    """The search's trials, best first when it has a metric (those without one last), else
    in the order they started."""
    runs = RunService(ctx).list(0, None, hyper_search_id=search.id).runs if search.run_ids \
        else []
    metrics = MetricService(ctx)
    found = [Trial(run, score(metrics, run.id, search.metric, search.aggregation)
                   if search.metric else None) for run in sorted(runs, key=lambda r: r.id)]
    if search.metric:
        sign = -1 if search.mode == "max" else 1
        found.sort(key=lambda t: (t.score is None, sign * (t.score or 0.0), t.run.id))
    return found


@router.get("/searches", response_class=HTMLResponse)
def searches_page(request: Request,
                  archived: Annotated[bool, Query(alias="all")] = False) -> HTMLResponse:
    """Newest first; archived ones only with ?all=1 (as `spell hyper list --all`)."""
    listing = HyperService(_ctx(request)).list(archived, viewer(request).owners).searches
    return render(request, "searches.html", {"searches": listing, "all": archived})


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(request: Request, search_id: DbId) -> HTMLResponse:
    ctx = _ctx(request)
    search = HyperService(ctx).get(search_id)
    found = trials(ctx, search)
    ended = SearchStatus(search.status).is_terminal
    return render(request, "search.html", {
        "search": search, "trials": found, "space": space(search),
        "names": [p.name for p in search.params], "ended": ended, "poll": POLL_SECONDS,
        # the page reloads itself while anything goes (no JavaScript needed for that)
        "live": not ended or any(not t.run.status.is_terminal for t in found)})


@router.get("/searches/{search_id}/chart.json")
def chart(request: Request, search_id: DbId) -> JSONResponse:
    """The search's metric per trial (run number on x), in the shape of a run's
    charts.json, so console.js draws it the same way."""
    ctx = _ctx(request)
    search = HyperService(ctx).get(search_id)
    series: dict[str, list[list[float | None]]] = {}
    if search.metric:
        points = sorted((t.run.id, t.score) for t in trials(ctx, search))
        series[search.metric] = [[p[0] for p in points], [p[1] for p in points]]
    return JSONResponse({"metrics": series, "stats": {}, "x": "run"})


# -- actions (POST: the gate asks for the CSRF token) -------------------------------------
@router.post("/searches/{search_id}/stop")
def stop(request: Request, search_id: DbId) -> Response:
    HyperService(_ctx(request)).stop(search_id)
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/searches/{search_id}/kill")
def kill(request: Request, search_id: DbId) -> Response:
    HyperService(_ctx(request)).kill(search_id)
    return Response(status_code=204, headers={"HX-Refresh": "true"})

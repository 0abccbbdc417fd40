"""The console's runs: the list (the home page) and a run's page, with its live log, charts,
outputs and actions. Everything goes through RunService, MetricService and StatsService,
as the API does."""

from __future__ import annotations

import mimetypes
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from spellray.errors import InvalidInput, NotFound
from spellray.schemas import UNCATEGORIZED, Run, RunRequest, RunStatus, TensorBoardRequest
from spellray.schemas.base import ByteOffset, DbId
from spellray.server.console.log_view import EARLIER_LINES, FIRST_LINES, earlier, tail
from spellray.server.console.outputs import output_tree
from spellray.server.console.render import render
from spellray.server.console.viewer import viewer
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.metrics import SYSTEM_PREFIX, MetricService, experiment_of
from spellray.server.services.projects import ProjectService
from spellray.server.services.resources import ResourceService
from spellray.server.services.run_preparation import log_path
from spellray.server.services.runs import RunService
from spellray.server.services.stats import StatsService
from spellray.server.services.tensorboard import TensorBoardService
from spellray.storage.paths import join

router = APIRouter()
PAGE_SIZE = 50
# How often an open page asks for what changed (statuses, the log), in seconds.
POLL_SECONDS = 2


def _ctx(request: Request) -> ServerContext:
    return request.app.state.server.ctx


def _filters(request: Request) -> dict[str, Any]:
    """The list's filters from the query string, checked (a bad one is a clear error)."""
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in RunStatus._value2member_map_:
        raise InvalidInput(f"status {status!r} is not one of "
                           f"{', '.join(s.value for s in RunStatus)}")
    filters: dict[str, Any] = {"status": status, "label": q.get("label") or None,
                               "q": q.get("q") or None, "project": q.get("project") or None}
    for name in ("workflow", "search", "page"):
        value = q.get(name) or None
        if value is not None and not value.isdigit():
            raise InvalidInput(f"{name} must be a number, not {value!r}")
        filters[name] = int(value) if value else None
    return filters


def _listing(request: Request) -> dict[str, Any]:
    filters = _filters(request)
    page = max(filters["page"] or 1, 1)
    who = viewer(request)
    listing = RunService(_ctx(request)).list(
        PAGE_SIZE, filters["label"], who, workflow_id=filters["workflow"],
        status=RunStatus(filters["status"]) if filters["status"] else None,
        text=filters["q"], hyper_search_id=filters["search"],
        offset=(page - 1) * PAGE_SIZE, project=filters["project"])
    kept = {k: v for k, v in filters.items() if v is not None and k != "page"}
    pages = max(1, -(-listing.total // PAGE_SIZE))
    # Whose: a column only when the runs shown are more than one owner's (as spell ps).
    owned = len({run.owner for run in listing.runs}) > 1
    projects = [UNCATEGORIZED, *(p.name for p in ProjectService(_ctx(request),
                                                                  who.owners).list())]
    return {"runs": listing.runs, "total": listing.total, "page": page, "pages": pages,
            "owned": owned, "projects": projects,
            "in_projects": not filters["project"] and any(r.project for r in listing.runs),
            "filters": filters, "query": urlencode(kept), "statuses": list(RunStatus),
            "poll": POLL_SECONDS}


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return render(request, "runs.html", _listing(request))


@router.get("/runs/table", response_class=HTMLResponse)
def runs_table(request: Request) -> HTMLResponse:
    """The list's table alone: what an open runs page polls for (live statuses)."""
    return render(request, "_runs_table.html", _listing(request))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: DbId) -> HTMLResponse:
    ctx = _ctx(request)
    runs = RunService(ctx)
    run = runs.get(run_id)
    text, start, end = tail(ctx.storage, log_path(run_id), FIRST_LINES,
                            whole=run.status.is_terminal)
    return render(request, "run.html", {
        "run": run, "log": text, "log_start": start, "log_end": end,
        "live": not run.status.is_terminal, "tree": output_tree(runs.outputs(run_id)),
        "mlflow": _mlflow_link(ctx, run), "ray_job": run.ray_submission_id,
        "tensorboard": run.tensorboard_dir is not None, "poll": POLL_SECONDS,
        "earlier_lines": EARLIER_LINES})


def wait_until_answers(url: str, timeout: float = 60) -> None:
    """Until a backend the console sends the browser to answers (TensorBoard just started):
    the browser then lands on the page, not on "starting"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5, trust_env=False).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _mlflow_link(ctx: ServerContext, run: Run) -> str | None:
    if not run.mlflow_run_id:
        return None
    return f"/mlflow/#/experiments/{experiment_of(ctx, run.id)}/runs/{run.mlflow_run_id}"


@router.get("/runs/{run_id}/status", response_class=HTMLResponse)
def run_status(request: Request, run_id: DbId) -> HTMLResponse:
    """The run's status badge: polled while the run goes."""
    run = RunService(_ctx(request)).get(run_id)
    return render(request, "_status.html", {"run": run, "poll": POLL_SECONDS})


@router.get("/runs/{run_id}/log", response_class=HTMLResponse)
def log_since(request: Request, run_id: DbId, offset: ByteOffset = 0) -> HTMLResponse:
    """What the log gained since ``offset``, then the poller for the next (none once the
    run has ended and the log is whole)."""
    chunk = RunService(_ctx(request)).logs(run_id, offset)
    return render(request, "_log_more.html", {"run_id": run_id, "text": chunk.text,
                                              "offset": chunk.offset,
                                              "finished": chunk.finished,
                                              "poll": POLL_SECONDS})


@router.get("/runs/{run_id}/log/earlier", response_class=HTMLResponse)
def log_earlier(request: Request, run_id: DbId, before: ByteOffset) -> HTMLResponse:
    """Up to EARLIER_LINES lines before byte ``before`` (the "load earlier" button)."""
    ctx = _ctx(request)
    RunService(ctx).get(run_id)
    text, start = earlier(ctx.storage, log_path(run_id), before, EARLIER_LINES)
    return render(request, "_log_earlier.html", {"run_id": run_id, "text": text,
                                                 "start": start,
                                                 "earlier_lines": EARLIER_LINES})


@router.get("/runs/{run_id}/log.txt")
def whole_log(request: Request, run_id: DbId) -> Response:
    """The whole log, streamed from storage."""
    ctx = _ctx(request)
    RunService(ctx).get(run_id)
    if ctx.storage.size(log_path(run_id)) is None:
        raise NotFound(f"run {run_id} has no log yet")
    return _stream(ctx, log_path(run_id), "text/plain; charset=utf-8", None)


@router.get("/runs/{run_id}/charts.json")
def charts(request: Request, run_id: DbId) -> JSONResponse:
    """Every number metric (index -> value) and the hardware stats (time -> value), for the
    run page's charts."""
    ctx = _ctx(request)
    metrics = MetricService(ctx)
    series: dict[str, list[list[float]]] = {}
    for summary in metrics.list(run_id):
        if summary.kind != "number" or summary.name.startswith(SYSTEM_PREFIX):
            continue
        values = metrics.series(run_id, summary.name).values
        series[summary.name] = [[v.index for v in values], [float(v.value) for v in values]]
    samples = StatsService(ctx).chunk(run_id, 0).samples
    own = [s for s in samples if s.rank in (None, 0)]
    start = own[0].time if own else 0.0
    # None (a gap in the chart) where a sample has no reading: the command had ended.
    times = [s.time - start for s in own]
    stats: dict[str, list[list[float | None]]] = {
        "CPU % (of one core)": [times, [s.cpu_percent for s in own]],
        "memory (MB)": [times, [None if s.memory_rss_bytes is None
                                else s.memory_rss_bytes / 2**20 for s in own]],
    } if own else {}
    for index in range(max((len(s.gpus) for s in own), default=0)):
        stats[f"GPU {index} %"] = [times, [s.gpus[index].utilization_percent
                                           if index < len(s.gpus) else None for s in own]]
    return JSONResponse({"metrics": series, "stats": stats})


@router.get("/runs/{run_id}/files/{path:path}")
def download(request: Request, run_id: DbId, path: str) -> Response:
    """One output file, streamed from storage with its content type. Only a path the run's
    outputs list is served: nothing outside the run, whatever the path says."""
    ctx = _ctx(request)
    outputs = {item.path for item in RunService(ctx).outputs(run_id)}
    if path not in outputs:
        raise NotFound(f"run {run_id} has no output {path!r}")
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return _stream(ctx, join("runs", run_id, path), kind, path.rsplit("/", 1)[-1])


def _stream(ctx: ServerContext, path: str, kind: str, filename: str | None) -> Response:
    """A file out of storage, as the API's resource download streams it."""
    # No Content-Length: a running run's log grows while it streams.
    _, chunks = ResourceService(ctx).download(path)
    headers = {"x-content-type-options": "nosniff"}
    if filename is not None:
        quoted = filename.replace('"', "")
        headers["content-disposition"] = f'attachment; filename="{quoted}"'
    return StreamingResponse(chunks, media_type=kind, headers=headers)


# -- actions (POST: the gate asks for the CSRF token) -------------------------------------
async def form_fields(request: Request) -> dict[str, str]:
    """An htmx form post's fields (urlencoded: no multipart library needed for this)."""
    body = (await request.body()).decode()
    return {k: v[-1] for k, v in parse_qs(body).items()}


def _refresh() -> Response:
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/runs/{run_id}/stop")
def stop(request: Request, run_id: DbId) -> Response:
    RunService(_ctx(request)).stop(run_id)
    return _refresh()


@router.post("/runs/{run_id}/kill")
def kill(request: Request, run_id: DbId) -> Response:
    RunService(_ctx(request)).kill(run_id)
    return _refresh()


@router.post("/runs/{run_id}/labels")
async def label(request: Request, run_id: DbId) -> Response:
    form = await form_fields(request)
    name = form.get("label", "").strip()
    present = form.get("action", "add") != "remove"
    RunService(_ctx(request)).set_label(run_id, name, present)
    return _refresh()


@router.post("/runs/{run_id}/tensorboard")
def tensorboard(request: Request, run_id: DbId) -> Response:
    """TensorBoard on this run (as `spell tensorboard RUN`), opened once it answers; the
    console's login covers /tensorboard too."""
    server = request.app.state.server
    board = TensorBoardService(server.ctx, server.tensorboards, server.browser_sessions) \
        .open(TensorBoardRequest(run_ids=[run_id]), viewer(request))
    backend = server.tensorboards.get(board.set_id)
    if backend is not None:
        wait_until_answers(f"{backend.backend}{board.path}data/environment")
    return Response(status_code=204, headers={"HX-Redirect": board.path})


@router.post("/runs/{run_id}/rerun")
def rerun(request: Request, run_id: DbId) -> Response:
    """A new run with the same options (code, environment, mounts, variables, labels)."""
    runs = RunService(_ctx(request))
    run = runs.get(run_id)
    if run.kind not in ("run", "trial"):
        raise InvalidInput(f"run {run_id} is a {run.kind}'s run: start it again from the "
                           f"{run.kind}'s own command")
    request_again = RunRequest(
        command=run.command, machine_type=run.machine_type, env=run.env,
        description=run.description, labels=run.labels, code=run.code,
        git=run.git, mounts=[m.model_copy(update={"resolved": None}) for m in run.mounts],
        environment=run.environment, timeout_minutes=run.timeout_minutes,
        stop_conditions=run.stop_conditions, distributed=run.distributed,
        tensorboard_dir=run.tensorboard_dir)
    created = runs.submit(request_again, owner=viewer(request).owner or FIRST_ADMIN)
    return Response(status_code=204, headers={"HX-Redirect": f"/runs/{created.id}"})

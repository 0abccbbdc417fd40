"""The console's models and model servers: every model's versions and where each came from,
the servers (status, replicas, endpoint), and a server's page with a curl line, a predict
box and its logs. Through ModelService and ModelServerService, as `spell model` and
`spell server` are; a prediction goes to the server's endpoint as `spell server predict`
sends it (the SDK's predict_at)."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from spellray.client.model_servers import PredictionError, predict_at
from spellray.errors import InvalidInput, RayRefused, SpellrayError
from spellray.schemas import ModelServer
from spellray.serve.names import DEPLOYMENT
from spellray.server.console.render import render
from spellray.server.console.runs import form_fields
from spellray.server.console.viewer import viewer
from spellray.server.context import ServerContext
from spellray.server.services.model_servers import ModelServerService
from spellray.server.services.models import ModelService

router = APIRouter()
# A resource made by a run: its outputs folder, the run's page.
RUN_RESOURCE = re.compile(r"^runs/(\d+)(?:/|$)")
EXAMPLE_PAYLOAD = '{"x": 1}'


def _ctx(request: Request) -> ServerContext:
    return request.app.state.server.ctx


def run_of(resource: str) -> int | None:
    found = RUN_RESOURCE.match(resource)
    return int(found[1]) if found else None


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> HTMLResponse:
    by_name: dict[str, list[Any]] = {}
    for model in ModelService(_ctx(request)).list(viewer(request).owners):
        by_name.setdefault(model.name, []).append(model)
    for versions in by_name.values():
        versions.reverse()  # the newest first
    return render(request, "models.html", {"models": by_name, "run_of": run_of})


def _serve_details(servers: ModelServerService) -> dict[str, Any] | None:
    """Serve's view of every application (None while Ray does not answer: the records are
    still worth showing)."""
    try:
        return servers.serve.details()
    except SpellrayError:
        return None


def replicas(details: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """The server's replicas as Serve has them: how many run, of how many, and each one."""
    if details is None:
        return None
    app = (details.get("applications") or {}).get(name) or {}
    deployment = (app.get("deployments") or {}).get(DEPLOYMENT) or {}
    each = deployment.get("replicas") or []
    return {"running": sum(1 for r in each if r.get("state") == "RUNNING"),
            "total": len(each), "each": each}


@router.get("/model-servers", response_class=HTMLResponse)
def servers_page(request: Request) -> HTMLResponse:
    servers = ModelServerService(_ctx(request))
    details = _serve_details(servers)
    listed = [(s, replicas(details, s.name)) for s in servers.list(viewer(request).owners)]
    return render(request, "model_servers.html", {"servers": listed})


def curl_line(server: ModelServer, payload: str = EXAMPLE_PAYLOAD) -> str:
    """What `spell server predict` sends, as one shell line (quoted: a name is user data)."""
    parts = ["curl", "-X", "POST", server.endpoint or "", "-H",
             "Content-Type: application/json"]
    if server.token:
        parts += ["-H", f"Authorization: Bearer {server.token}"]
    return shlex.join([*parts, "-d", payload])


@router.get("/model-servers/{name}", response_class=HTMLResponse)
def server_page(request: Request, name: str) -> HTMLResponse:
    servers = ModelServerService(_ctx(request))
    server = servers.describe(name)
    try:
        logs = servers.logs(name)
    except SpellrayError as exc:  # Ray or Serve not answering: the page still shows the rest
        logs = f"(no logs: {exc.message})"
    return render(request, "model_server.html", {
        "server": server, "replicas": replicas(_serve_details(servers), name),
        "curl": curl_line(server), "logs": logs, "example": EXAMPLE_PAYLOAD,
        "options": json.dumps(server.options.model_dump(exclude_defaults=True)),
        "run_of": run_of})


@router.post("/model-servers/{name}/predict", response_class=HTMLResponse)
async def predict(request: Request, name: str) -> HTMLResponse:
    """The predict box: its JSON sent to the server's endpoint; the answer shown."""
    text = (await form_fields(request)).get("payload", "")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the payload is not JSON ({exc})") from None
    # The endpoint call blocks (up to a minute): off the event loop.
    answer = await run_in_threadpool(_predict, _ctx(request), name, payload)
    return render(request, "_predict_answer.html",
                  {"answer": json.dumps(answer, indent=2, ensure_ascii=False)})


def _predict(ctx: ServerContext, name: str, payload: Any) -> Any:
    server = ModelServerService(ctx).describe(name)
    try:
        return predict_at(server, payload)
    except PredictionError as exc:  # the endpoint's refusal (4xx: the payload's fault)
        raise (InvalidInput if exc.status < 500 else RayRefused)(exc.message) from None

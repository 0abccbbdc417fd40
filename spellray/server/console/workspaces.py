"""The console's workspaces: the list (status, idle time), and from the browser: make one
(name, machine type, mounts, pip packages), open one (its own one-time login), stop one.

Everything is at /workspaces itself, since /workspaces/NAME/... is that workspace's Jupyter
(workspace_gate.py): the list is GET /workspaces (?table=1: the table alone, which the page
polls), and the actions are POST /workspaces with an ``action`` field."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from spellray.client._run_request import parse_mount
from spellray.errors import InvalidInput, NotFound
from spellray.schemas import Environment, RunRequest, WorkspaceRequest
from spellray.server import db
from spellray.server.auth import Principal
from spellray.server.console.render import render
from spellray.server.console.runs import POLL_SECONDS, form_fields
from spellray.server.console.viewer import viewer
from spellray.server.ownership import FIRST_ADMIN, sees
from spellray.server.services.workspaces import WorkspaceService

router = APIRouter()


def _service(request: Request) -> WorkspaceService:
    server = request.app.state.server
    return WorkspaceService(server.ctx, server.browser_sessions)


@router.get("/workspaces", response_class=HTMLResponse)
def workspaces_page(request: Request, table: bool = False) -> HTMLResponse:
    server = request.app.state.server
    context: dict[str, Any] = {
        "workspaces": _service(request).list(viewer(request).owners).workspaces,
        "poll": POLL_SECONDS,
        "machine_types": sorted(server.ctx.machine_types)}
    return render(request, "_workspaces_table.html" if table else "workspaces.html", context)


@router.post("/workspaces")
async def workspace_action(request: Request) -> Response:
    """create | open | stop, named by the form's ``action``."""
    form = await form_fields(request)
    action, name = form.get("action", ""), form.get("name", "").strip()
    service, who = _service(request), viewer(request)
    if action == "create":
        service.open(_request_from(form), who.owner or FIRST_ADMIN, who.owners)
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    if name and not _seen(request, name, who):
        raise NotFound(f"there is no workspace {name!r}; spell jupyter --list shows them")
    if action == "open":
        login = service.login(name, who.user_name)
        return Response(status_code=204, headers={"HX-Redirect": login.login_path})
    if action == "stop":
        service.stop(name)
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    raise InvalidInput(f"unknown action {action!r}: create, open or stop")


def _seen(request: Request, name: str, who: Principal) -> bool:
    with request.app.state.server.ctx.sessions() as session:
        row = session.get(db.Workspace, name)
        return row is None or sees(who.owners, row.owner)


def _request_from(form: dict[str, str]) -> WorkspaceRequest:
    """The browser's form as `spell jupyter NAME -t TYPE -m ... --pip ...` would send it (no
    code: a browser has no folder to send; the workspace starts empty)."""
    mounts = [m for m in form.get("mounts", "").split() if m]
    pip = [p for p in form.get("pip", "").split() if p]
    try:
        run = RunRequest(command="jupyter lab", machine_type=form.get("machine_type") or "CPU",
                         mounts=[parse_mount(m) for m in mounts],
                         environment=Environment(pip=pip))
        return WorkspaceRequest(name=form.get("name", "").strip(), run=run,
                                given=["machine_type", "mounts", "environment"])
    except ValidationError as exc:
        raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None

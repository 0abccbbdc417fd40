"""The console's workflows: the list, and a workflow's page (its manager and the runs it
started, as a tree by who started whom, with statuses; stop and kill). Everything goes
through WorkflowService, as `spell workflow` and the API do."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from spellray.schemas import Run, Workflow
from spellray.schemas.base import DbId
from spellray.server.console.render import render
from spellray.server.console.runs import POLL_SECONDS
from spellray.server.console.viewer import viewer
from spellray.server.context import ServerContext
from spellray.server.services.workflows import WorkflowService

router = APIRouter()
PAGE_SIZE = 50


def _service(request: Request) -> WorkflowService:
    ctx: ServerContext = request.app.state.server.ctx
    return WorkflowService(ctx)


def children_of(workflow: Workflow) -> dict[int, list[Run]]:
    """Each run's children in the workflow (by parent_run_id), oldest first. A run whose
    parent is not in the workflow hangs under the manager, so no run is left out."""
    ids = {workflow.manager_run_id, *(r.id for r in workflow.runs)}
    tree: dict[int, list[Run]] = {}
    for run in workflow.runs:
        parent = run.parent_run_id if run.parent_run_id in ids and run.parent_run_id != run.id \
            else workflow.manager_run_id
        tree.setdefault(parent, []).append(run)
    return tree


@router.get("/workflows", response_class=HTMLResponse)
def workflows_page(request: Request) -> HTMLResponse:
    listing = _service(request).list(PAGE_SIZE, viewer(request).owners)
    return render(request, "workflows.html", {"workflows": listing.workflows,
                                              "total": listing.total})


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse)
def workflow_page(request: Request, workflow_id: DbId) -> HTMLResponse:
    workflow = _service(request).get(workflow_id)
    live = not workflow.status.is_terminal or any(
        not r.status.is_terminal for r in workflow.runs)
    return render(request, "workflow.html", {"workflow": workflow,
                                             "children": children_of(workflow),
                                             "live": live, "poll": POLL_SECONDS})


# -- actions (POST: the gate asks for the CSRF token) -------------------------------------
@router.post("/workflows/{workflow_id}/stop")
def stop(request: Request, workflow_id: DbId) -> Response:
    _service(request).stop(workflow_id)
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/workflows/{workflow_id}/kill")
def kill(request: Request, workflow_id: DbId) -> Response:
    _service(request).kill(workflow_id)
    return Response(status_code=204, headers={"HX-Refresh": "true"})

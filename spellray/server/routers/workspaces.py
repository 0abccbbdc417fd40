"""HTTP routes for workspaces (thin; services/workspaces.py does the work). Jupyter itself
is served under /workspaces/NAME/ by server/workspace_gate.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from spellray.schemas import (
    Workspace,
    WorkspaceAddress,
    WorkspaceList,
    WorkspaceLogin,
    WorkspaceRequest,
)
from spellray.schemas.base import DbId
from spellray.server.auth import Caller, Scope, scoped
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.workspaces import WorkspaceService

router = APIRouter(prefix="/api", tags=["workspaces"])


def service(request: Request) -> WorkspaceService:
    state = request.app.state
    return WorkspaceService(state.ctx, state.browser_sessions)


Service = Annotated[WorkspaceService, Depends(service)]


# Users only (no @scoped): a workspace runs any code on the cluster and shows its files.
@router.post("/workspaces", response_model=Workspace)
def open_workspace(body: WorkspaceRequest, workspaces: Service, caller: Caller) -> Workspace:
    return workspaces.open(body, caller.owner or FIRST_ADMIN, caller.owners)


@router.get("/workspaces", response_model=WorkspaceList)
def list_workspaces(workspaces: Service, caller: Caller) -> WorkspaceList:
    return workspaces.list(caller.owners)


@router.get("/workspaces/{name}", response_model=Workspace)
def get_workspace(name: str, workspaces: Service) -> Workspace:
    return workspaces.get(name)


@router.post("/workspaces/{name}/stop", response_model=Workspace)
def stop_workspace(name: str, workspaces: Service) -> Workspace:
    return workspaces.stop(name)


@router.delete("/workspaces/{name}", status_code=204)
def remove_workspace(name: str, workspaces: Service) -> Response:
    workspaces.rm(name)
    return Response(status_code=204)


@router.post("/workspaces/{name}/login", response_model=WorkspaceLogin)
def login_workspace(name: str, workspaces: Service, caller: Caller) -> WorkspaceLogin:
    return workspaces.login(name, caller.user_name)


# The runner's report, with its run's own token: Jupyter answers at this address.
@router.post("/runs/{run_id}/workspace-address", status_code=204)
@scoped(Scope.runs_report)
def report_workspace_address(run_id: DbId, body: WorkspaceAddress,
                             workspaces: Service) -> Response:
    workspaces.set_address(run_id, body)
    return Response(status_code=204)

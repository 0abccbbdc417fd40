"""HTTP routes for workflows: thin, everything happens in services/workflows.py. A
workflow's runs are runs (/api/runs?workflow_id=N)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import Workflow, WorkflowList, WorkflowRequest
from spellray.schemas.base import DbId
from spellray.server.auth import Caller, Scope, scoped
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.workflows import WorkflowService

router = APIRouter(prefix="/api/workflows", tags=["workflows"])


def service(request: Request) -> WorkflowService:
    return WorkflowService(request.app.state.ctx)


Service = Annotated[WorkflowService, Depends(service)]


@router.post("", response_model=Workflow, status_code=201)
def create_workflow(body: WorkflowRequest, workflows: Service, caller: Caller) -> Workflow:
    return workflows.create(body, caller.owner or FIRST_ADMIN)


@router.get("", response_model=WorkflowList)
def list_workflows(workflows: Service, caller: Caller, limit: int = 50) -> WorkflowList:
    return workflows.list(limit, caller.owners)


@router.get("/{workflow_id}", response_model=Workflow)
@scoped(Scope.runs_read)
def get_workflow(workflow_id: DbId, workflows: Service) -> Workflow:
    return workflows.get(workflow_id)


@router.post("/{workflow_id}/stop", response_model=Workflow)
@scoped(Scope.runs_control)
def stop_workflow(workflow_id: DbId, workflows: Service) -> Workflow:
    return workflows.stop(workflow_id)


@router.post("/{workflow_id}/kill", response_model=Workflow)
@scoped(Scope.runs_control)
def kill_workflow(workflow_id: DbId, workflows: Service) -> Workflow:
    return workflows.kill(workflow_id)


@router.delete("/{workflow_id}", status_code=204)
def rm_workflow(workflow_id: DbId, workflows: Service) -> None:
    workflows.rm(workflow_id)

"""HTTP routes for runs: thin, everything happens in services/runs.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from spellray.schemas import (
    EnvironmentLog,
    LogChunk,
    OutputFile,
    ProjectRuns,
    Run,
    RunList,
    RunRequest,
    StatusReport,
)
from spellray.schemas.base import DbId
from spellray.server.auth import Principal, Scope, current_principal, scoped
from spellray.server.services import run_archive
from spellray.server.services.runs import RunService

router = APIRouter(prefix="/api/runs", tags=["runs"])


def service(request: Request) -> RunService:
    return RunService(request.app.state.ctx)


Service = Annotated[RunService, Depends(service)]
Caller = Annotated[Principal, Depends(current_principal)]


@router.post("", response_model=Run, status_code=201)
@scoped(Scope.runs_create)
def create_run(body: RunRequest, runs: Service, caller: Caller) -> Run:
    return runs.create(body, caller)


@router.get("", response_model=RunList)
@scoped(Scope.runs_read)
def list_runs(runs: Service, caller: Caller, limit: int = 50, label: str | None = None,
              workflow_id: DbId | None = None, all: bool = False, project: str | None = None,
              archived: bool = False) -> RunList:
    return runs.list(limit, label, caller, workflow_id, include_workspaces=all,
                     project=project, archived=archived)


@router.post("/archive", response_model=list[int])
def archive_runs(body: ProjectRuns, request: Request, caller: Caller) -> list[int]:
    """`spell archive RUN...`: the numbers of the runs archived now (users' tokens)."""
    return run_archive.set_archived(request.app.state.ctx, body.runs, True, caller.owners)


@router.post("/unarchive", response_model=list[int])
def unarchive_runs(body: ProjectRuns, request: Request, caller: Caller) -> list[int]:
    """`spell unarchive RUN...`: the numbers of the runs unarchived now."""
    return run_archive.set_archived(request.app.state.ctx, body.runs, False, caller.owners)


@router.get("/{run_id}", response_model=Run)
@scoped(Scope.runs_read)
def get_run(run_id: DbId, runs: Service) -> Run:
    return runs.get(run_id)


@router.get("/{run_id}/logs", response_model=LogChunk)
@scoped(Scope.runs_read)
def get_logs(run_id: DbId, runs: Service, offset: Annotated[int, Query(ge=0)] = 0,
             wait: Annotated[float, Query(ge=0, le=30)] = 0) -> LogChunk:
    return runs.logs(run_id, offset, wait)


@router.get("/{run_id}/environment-log", response_model=EnvironmentLog)
@scoped(Scope.runs_read)
def get_environment_log(run_id: DbId, runs: Service) -> EnvironmentLog:
    return runs.environment_log(run_id)


@router.get("/{run_id}/outputs", response_model=list[OutputFile])
@scoped(Scope.runs_read)
def get_outputs(run_id: DbId, runs: Service) -> list[OutputFile]:
    return runs.outputs(run_id)


@router.post("/{run_id}/kill", response_model=Run)
@scoped(Scope.runs_control)
def kill_run(run_id: DbId, runs: Service) -> Run:
    return runs.kill(run_id)


@router.post("/{run_id}/stop", response_model=Run)
@scoped(Scope.runs_control)
def stop_run(run_id: DbId, runs: Service) -> Run:
    return runs.stop(run_id)


@router.post("/{run_id}/status", response_model=Run)
@scoped(Scope.runs_report)
def report_status(run_id: DbId, body: StatusReport, runs: Service) -> Run:
    return runs.report(run_id, body)


@router.put("/{run_id}/labels/{label}", response_model=Run)
@scoped(Scope.runs_control)
def add_label(run_id: DbId, label: str, runs: Service) -> Run:
    return runs.set_label(run_id, label, present=True)


@router.delete("/{run_id}/labels/{label}", response_model=Run)
@scoped(Scope.runs_control)
def remove_label(run_id: DbId, label: str, runs: Service) -> Run:
    return runs.set_label(run_id, label, present=False)

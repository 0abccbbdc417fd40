"""HTTP routes for projects (`spell project ...`): thin over services/projects.py. Users'
tokens only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import Project, ProjectRequest, ProjectRuns, ProjectUpdate
from spellray.server.auth import Caller
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.projects import ProjectService

router = APIRouter(prefix="/api", tags=["projects"])


def service(request: Request, caller: Caller) -> ProjectService:
    return ProjectService(request.app.state.ctx, caller.owners)


Service = Annotated[ProjectService, Depends(service)]


@router.post("/projects", response_model=Project, status_code=201)
def create_project(body: ProjectRequest, projects: Service, caller: Caller) -> Project:
    return projects.create(body, caller.owner or FIRST_ADMIN)


@router.get("/projects", response_model=list[Project])
def list_projects(projects: Service, archived: bool = False) -> list[Project]:
    return projects.list(archived)


@router.get("/projects/{name}", response_model=Project)
def get_project(name: str, projects: Service) -> Project:
    return projects.get(name)


@router.patch("/projects/{name}", response_model=Project)
def edit_project(name: str, body: ProjectUpdate, projects: Service) -> Project:
    return projects.edit(name, body)


@router.post("/projects/{name}/runs", response_model=list[int])
def add_runs(name: str, body: ProjectRuns, projects: Service) -> list[int]:
    """Move the runs into the project; the numbers of those that moved."""
    return projects.add_runs(name, body.runs)


@router.post("/projects/{name}/runs/remove", response_model=list[int])
def remove_runs(name: str, body: ProjectRuns, projects: Service) -> list[int]:
    """Take the runs out of the project (uncategorized); the numbers of those that moved."""
    return projects.remove_runs(name, body.runs)


@router.post("/projects/{name}/archive", response_model=Project)
def archive_project(name: str, projects: Service) -> Project:
    return projects.archive(name, archived=True)


@router.post("/projects/{name}/unarchive", response_model=Project)
def unarchive_project(name: str, projects: Service) -> Project:
    return projects.archive(name, archived=False)


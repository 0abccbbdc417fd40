"""HTTP routes for teams and owners: thin over services/teams.py. Creating a team and adding
its members are an admin's; listing is anyone's (a member sees their own teams)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas.users import Owner, Team, TeamMemberRequest, TeamRequest
from spellray.server.auth import Caller, Scope, scoped
from spellray.server.services.teams import TeamService

router = APIRouter(prefix="/api", tags=["teams"])


def service(request: Request) -> TeamService:
    return TeamService(request.app.state.ctx)


Service = Annotated[TeamService, Depends(service)]


@router.post("/teams", response_model=Team, status_code=201)
@scoped(Scope.admin)
def create_team(body: TeamRequest, teams: Service) -> Team:
    return teams.create(body)


@router.post("/teams/{name}/members", response_model=Team)
@scoped(Scope.admin)
def add_member(name: str, body: TeamMemberRequest, teams: Service) -> Team:
    return teams.add(name, body.user)


@router.get("/teams", response_model=list[Team])
def list_teams(teams: Service, caller: Caller) -> list[Team]:
    return teams.list(caller)


@router.get("/owners", response_model=list[Owner])
def list_owners(teams: Service, caller: Caller) -> list[Owner]:
    return teams.owners(caller)

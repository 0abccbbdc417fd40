"""Teams and owners: `spell teams create | add | list` (an admin creates teams and adds
members) and `spell owner` (the owners a user may make things for: their own name and their
teams'). Teams and users share one namespace (server/ownership.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spellray.errors import Conflict, NotFound
from spellray.schemas.users import Owner, Team, TeamRequest
from spellray.server import db
from spellray.server.auth import Principal
from spellray.server.context import ServerContext
from spellray.server.ownership import teams_of


def _schema(session: Session, team: db.Team) -> Team:
    members = session.scalars(
        select(db.User.name).join(db.TeamMember, db.TeamMember.user_id == db.User.id)
        .where(db.TeamMember.team_id == team.id).order_by(db.User.name))
    return Team(name=team.name, members=list(members), created_at=team.created_at)


def _team(session: Session, name: str) -> db.Team:
    team = session.scalar(select(db.Team).where(db.Team.name == name))
    if team is None:
        raise NotFound(f"there is no team {name!r}; spell teams list lists them")
    return team


class TeamService:
    def __init__(self, ctx: ServerContext) -> None:
        self.sessions = ctx.sessions

    def create(self, request: TeamRequest) -> Team:
        taken = (f"the name {request.name} is taken (users and teams share names); "
                 "spell teams list and spell users list show them")
        with self.sessions() as session:
            if session.scalar(select(db.User.id).where(db.User.name == request.name)) \
                    or session.scalar(select(db.Team.id).where(db.Team.name == request.name)):
                raise Conflict(taken)
            team = db.Team(name=request.name)
            session.add(team)
            try:
                session.commit()
            except IntegrityError:  # made at the same moment by another request
                raise Conflict(taken) from None
            return _schema(session, team)

    def add(self, name: str, user_name: str) -> Team:
        with self.sessions() as session:
            team = _team(session, name)
            user = session.scalar(select(db.User).where(db.User.name == user_name))
            if user is None:
                raise NotFound(f"there is no user {user_name!r}; spell users list lists them")
            if session.get(db.TeamMember, (team.id, user.id)) is None:
                session.add(db.TeamMember(team_id=team.id, user_id=user.id))
                try:
                    session.commit()
                except IntegrityError:  # added at the same moment: it is there either way
                    session.rollback()
            return _schema(session, team)

    def list(self, principal: Principal) -> list[Team]:
        """Every team for an admin; a member's own teams for a member."""
        with self.sessions() as session:
            query = select(db.Team).order_by(db.Team.name)
            if principal.owners is not None:
                query = query.where(db.Team.name.in_(sorted(principal.owners)))
            return [_schema(session, team) for team in session.scalars(query)]

    def owners(self, principal: Principal) -> list[Owner]:
        """What `spell owner` lists: the caller's own name, then their teams (an admin: every
        team too, since an admin may make things for anyone), the active one marked."""
        with self.sessions() as session:
            user = session.scalar(select(db.User).where(db.User.name == principal.user_name))
            if user is None:
                raise NotFound("this token is no user's: spell owner is for users")
            teams = (session.scalars(select(db.Team.name).order_by(db.Team.name)).all()
                     if principal.owners is None else teams_of(session, user.id))
        found = [Owner(name=user.name, kind="user"),
                 *(Owner(name=team, kind="team") for team in teams)]
        if principal.owner not in {o.name for o in found}:  # an admin acting as a user
            found.append(Owner(name=principal.owner or "", kind="user"))
        return [o.model_copy(update={"active": o.name == principal.owner}) for o in found]

"""The SDK's teams and owners: ``client.teams`` (`spell teams create | add | list`,
`spell owner`)."""

from __future__ import annotations

from urllib.parse import quote

from spellray.client._http import OWNER_HEADER, ResourceGroup, checked
from spellray.schemas.users import Owner, Team, TeamMemberRequest, TeamRequest, WhoAmI


class Teams(ResourceGroup):
    def create(self, name: str) -> Team:
        """A new team (admins only); users and teams share names."""
        body = checked(TeamRequest, name=name)
        return Team.model_validate(self._api.request("POST", "/api/teams",
                                                     json=body.model_dump()))

    def add(self, name: str, user: str) -> Team:
        """Make ``user`` a member of team ``name`` (admins only)."""
        body = TeamMemberRequest(user=user)
        return Team.model_validate(self._api.request(
            "POST", f"/api/teams/{quote(name, safe='')}/members", json=body.model_dump()))

    def list(self) -> list[Team]:
        """Every team (an admin), or the caller's own teams (a member)."""
        return [Team.model_validate(t) for t in self._api.request("GET", "/api/teams")]

    def use_owner(self, name: str) -> WhoAmI:
        """Who the caller would be as owner ``name``: Forbidden if they may not use it
        (NotFound for an admin naming no user or team). Sets nothing (the CLI keeps the
        choice, see client/logins.py; an SDK user passes Client(owner=...))."""
        return WhoAmI.model_validate(self._api.request("GET", "/api/whoami",
                                                       headers={OWNER_HEADER: name}))

    def owners(self) -> list[Owner]:
        """The owners the caller may make things for, the active one marked."""
        return [Owner.model_validate(o) for o in self._api.request("GET", "/api/owners")]

"""Who a console request speaks for, and the console's one owner check: the gate put the
user's name in the request's scope (browser_sessions.VIEWER); pages list only what that
user sees, and a page or action naming another owner's run, search, workflow or model
server answers 404, as the API does (server/auth.py)."""

from __future__ import annotations

from fastapi import Request

from spellray.errors import NotFound, RunNotFound
from spellray.server.auth import ADMIN, Principal, Scope
from spellray.server.browser_sessions import VIEWER
from spellray.server.ownership import hidden, viewer_owners


def viewer(request: Request) -> Principal:
    """The console user as a Principal (an admin, or a session of no user: sees all)."""
    name = request.scope.get(VIEWER)
    if name is None:
        return ADMIN
    with request.app.state.server.ctx.sessions() as session:
        owners = viewer_owners(session, name)
    scopes = frozenset({Scope.admin}) if owners is None else frozenset({Scope.user})
    return Principal(kind="session", scopes=scopes, user_name=name, owner=name, owners=owners)


def refuse_hidden(request: Request) -> None:
    """The console app's dependency: another owner's thing in the path is not there."""
    owners = viewer(request).owners
    if owners is None or not request.path_params:
        return
    route = request.scope.get("route")
    with request.app.state.server.ctx.sessions() as session:
        what = hidden(session, owners, getattr(route, "path", ""), request.path_params,
                      ids=True)
    if what is None:
        return
    if what.startswith("run "):
        raise RunNotFound(f"there is no {what}; spell ps lists the runs")
    raise NotFound(f"there is no {what}")

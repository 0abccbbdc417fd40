"""Owners: whose each thing is, and which owners a user sees.

An owner is a name: a user's or a team's (one namespace: a team may not take a user's name,
nor a user a team's). Every run, search, workflow, model, model server, workspace and link
has one (its ``owner`` column); an upload's is kept in ``upload_owners`` by its top-level
name. An admin sees every owner; a member sees their own name and their teams'; a run's,
workflow's or search's token sees what its owner sees (auth.py sets these on the Principal).

This module only reads the DB; auth.py decides what to answer (404 for what one may not see).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session

from spellray.server import db

# The header the SDK sends the active owner in (`spell owner NAME`); absent: the user's own.
OWNER_HEADER = "X-Spellray-Owner"
FIRST_ADMIN = "admin"  # the migrations' first admin: the owner of what no row names


def teams_of(session: Session, user_id: int) -> list[str]:
    return list(session.scalars(
        select(db.Team.name).join(db.TeamMember, db.TeamMember.team_id == db.Team.id)
        .where(db.TeamMember.user_id == user_id).order_by(db.Team.name)))


def seen_by(session: Session, owner: str | None) -> frozenset[str] | None:
    """The owners ``owner`` sees: None for all (an admin user); a member: their name and
    their teams'; a team: itself (a team's run sees the team's things)."""
    if owner is None:
        return frozenset()
    user = session.scalar(select(db.User).where(db.User.name == owner))
    if user is None:
        return frozenset({owner})
    if user.role == "admin":
        return None
    return frozenset({owner, *teams_of(session, user.id)})


def exists(session: Session, name: str) -> bool:
    """A user or a team of that name."""
    return (session.scalar(select(db.User.id).where(db.User.name == name)) is not None
            or session.scalar(select(db.Team.id).where(db.Team.name == name)) is not None)


def owned_by(column: Any, owners: frozenset[str] | None) -> ColumnElement[bool]:
    """A WHERE clause: rows whose ``column`` is one of ``owners`` (None: every row)."""
    if owners is None:
        return true()
    return column.in_(sorted(owners)) if owners else false()


def sees(owners: frozenset[str] | None, owner: str | None) -> bool:
    return owners is None or (owner or FIRST_ADMIN) in owners


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def model_owner(session: Session, name: str) -> str | None:
    """A model name's owner: its first version's (every version of a name is one owner's)."""
    return session.scalar(select(db.Model.owner).where(db.Model.name == name)
                          .order_by(db.Model.id).limit(1))


def _named(session: Session, route_path: str, params: dict[str, Any]
           ) -> tuple[str, str | None] | None:
    """The named thing a route's path points at: (what to call it, its owner), or None
    when the route names none or it does not exist (the route answers that itself)."""
    name = params.get("name")
    route_path = route_path.removeprefix("/api")  # the console's paths are the API's
    if route_path.startswith("/links/") and "alias" in params:
        link = session.get(db.Link, str(params["alias"]))
        return (f"link {link.alias!r}; `spell link` lists them", link.owner) if link else None
    if route_path.startswith("/models/") and name is not None:
        if session.scalar(select(db.Model.id).where(db.Model.name == name).limit(1)) is None:
            return None
        return (f"model {name}; spell model list shows the models",
                model_owner(session, str(name)))
    if route_path.startswith("/model-servers/") and name is not None:
        server = session.scalar(select(db.ModelServer).where(db.ModelServer.name == name))
        return (f"model server {name!r}; spell server list shows them",
                server.owner) if server else None
    if route_path.startswith("/workspaces/") and name is not None:
        workspace = session.get(db.Workspace, str(name))
        return (f"workspace {name!r}; spell jupyter --list shows them",
                workspace.owner) if workspace else None
    return None


def hidden(session: Session, owners: frozenset[str] | None, route_path: str,
           params: dict[str, Any], ids: bool) -> str | None:
    """What a route's path names that ``owners`` may not see ("run 7", "link 'x'; ..."),
    or None. ``ids``: check runs, workflows and searches by number too (a user's token;
    the run, workflow and search tokens have their own rules in auth.py)."""
    if owners is None:
        return None
    if ids:
        for key, table, what in (("run_id", db.Run, "run"), ("workflow_id", db.Run, "workflow"),
                                 ("search_id", db.HyperSearch, "search")):
            number = _int(params.get(key))
            if number is None:
                continue
            row = session.get(table, number)
            if row is not None and not sees(owners, row.owner):
                return f"{what} {number}"
    named = _named(session, route_path, params)
    if named is not None and not sees(owners, named[1]):
        return named[0]
    return None


def upload_owners(session: Session, names: Iterable[str]) -> dict[str, str]:
    names = list(names)
    if not names:
        return {}
    rows = session.execute(select(db.UploadOwner.name, db.UploadOwner.owner)
                           .where(db.UploadOwner.name.in_(names)))
    return {row.name: row.owner for row in rows}


def owners_in(session: Session, folder: str, names: list[str]) -> dict[str, str | None]:
    """The owners of a root folder's entries (runs/, uploads/, workspaces/), one query: a
    name with no row is missing (the first admin's, as path_owner says)."""
    if folder == "uploads":
        return dict(upload_owners(session, names))
    if folder == "runs":
        ids = [int(n) for n in names if n.isdigit()]
        rows = session.execute(select(db.Run.id, db.Run.owner).where(db.Run.id.in_(ids)))
        return {str(row.id): row.owner for row in rows}
    rows = session.execute(select(db.Workspace.name, db.Workspace.owner)
                           .where(db.Workspace.name.in_(names)))
    return {row.name: row.owner for row in rows}


def path_owner(session: Session, path: str) -> str | None:
    """The owner of a storage path's thing: runs/N's run, uploads/NAME's upload,
    workspaces/NAME's workspace; None for what everyone sees (public/, the roots)."""
    head, _, rest = path.partition("/")
    top = rest.split("/", 1)[0]
    if not top:
        return None
    if head == "runs":
        number = _int(top)
        run = session.get(db.Run, number) if number is not None else None
        return run.owner if run is not None else FIRST_ADMIN
    if head == "uploads":
        return upload_owners(session, [top]).get(top, FIRST_ADMIN)
    if head == "workspaces":
        workspace = session.get(db.Workspace, top)
        return workspace.owner if workspace is not None else FIRST_ADMIN
    return None


def viewer_owners(session: Session, viewer: str | None) -> frozenset[str] | None:
    """The owners a browser's viewer (a user's name, browser_sessions.VIEWER) sees; None
    (everything) for no user: only an admin's token of no user gets such a session."""
    return None if viewer is None else seen_by(session, viewer)


def runs_seen(session: Session, owners: frozenset[str] | None, run_ids: Iterable[int]) -> bool:
    """Whether ``owners`` see every one of the runs (a TensorBoard's set)."""
    if owners is None:
        return True
    ids = sorted(set(run_ids))
    found = session.execute(select(db.Run.id, db.Run.owner).where(db.Run.id.in_(ids))).all()
    return len(found) == len(ids) and all(sees(owners, row.owner) for row in found)

"""Bearer tokens and what each may do: made, stored hashed, resolved to a ``Principal`` and
checked against the scope a route declares, in one place (``authorize``, the app's one
dependency).

Every token has a kind and scopes. A user's tokens take their scopes from the user's role
(read at each request, so a changed role counts at once):

- ``admin`` (the token in SPELLRAY_HOME/token, the admin user's), ``session`` (what `spell
  login` stores) and ``access`` (`spell access-tokens create`): an admin user's may do
  everything; a member's everything but what is declared ``Scope.admin`` (managing users,
  teams), on what they own: their own things and their teams' (server/ownership.py).
- ``login``: a one-time token from `spell users add`, good for one `spell login` (exchanged
  there for a session token) and nothing else.
- ``run``: a run's own token: read its run, report its status, send its metrics, read
  resources. Revoked when the run ends.
- ``workflow``: a workflow manager's token: a run's, plus create, read and control
  (kill, stop, label) the runs of its own workflow. Revoked when the manager ends.
- ``search``: a search driver's: read its search, start its trials, report its status.

A resource a token may not see answers 404, as if it did not exist (another owner's, for a
member); one it may see but not act on answers 403. A route declares its scope with
``@scoped(...)``; an undeclared route is for users (``Scope.user``: admins and members), so
it stays closed to the run, workflow and search tokens until someone opens it. Expired,
revoked and deleted tokens are refused at once
(401, with what to do).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from spellray.errors import Forbidden, NotFound, RunNotFound, Unauthorized
from spellray.server.db import HyperSearch, Run, Token, User, utcnow
from spellray.server.ownership import FIRST_ADMIN, OWNER_HEADER, exists, hidden, seen_by, sees

log = logging.getLogger(__name__)


class Scope(str, Enum):
    admin = "admin"                    # an admin user's alone (managing users)
    user = "user"                      # any user's token, admin or member (the default)
    public = "public"                  # no token at all: logging in
    runs_read = "runs:read"            # runs it can see: the run, its log, outputs, metrics
    runs_report = "runs:report"        # its own run's status (the runner's reports)
    metrics_write = "metrics:write"    # its own run's metrics and MLflow run
    resources_read = "resources:read"  # ls / cp of resources, links, models
    runs_create = "runs:create"        # start runs (in its workflow) and upload their code
    runs_control = "runs:control"      # kill, stop and label runs it can see
    search_drive = "search:drive"      # its search: read it, start trials, report status
    authenticated = "authenticated"    # any valid token (server info)


# Scopes that act on the token's own run only, not on every run it can see.
OWN_RUN = frozenset({Scope.runs_report, Scope.metrics_write})
RUN_SCOPES = frozenset({Scope.runs_read, Scope.runs_report, Scope.metrics_write,
                        Scope.resources_read})
KIND_SCOPES: dict[str, frozenset[Scope]] = {
    "admin": frozenset({Scope.admin}),
    "run": RUN_SCOPES,
    "workflow": RUN_SCOPES | {Scope.runs_create, Scope.runs_control},
    "search": frozenset({Scope.search_drive}),
}
ROLE_SCOPES: dict[str, frozenset[Scope]] = {
    "admin": frozenset({Scope.admin}),
    "member": frozenset({Scope.user}),
}
# The kinds of token that speak for a user (their scopes come from the user's role).
USER_KINDS = frozenset({"admin", "session", "access"})
ADMIN_USER = "admin"
# How often a token's last use is written: at most once a minute per token. A write per
# request would queue every request behind SQLite's one writer (runners report and poll
# often); a minute is all `spell access-tokens list` needs.
TOUCH_EVERY = timedelta(seconds=60)
WHAT_TO_DO = "run spell login or spell access-tokens create"


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: its token's kind, scopes and what they are tied to."""

    kind: str
    scopes: frozenset[Scope]
    run_id: int | None = None
    workflow_id: int | None = None
    hyper_search_id: int | None = None
    # A user's token: whose, and their role.
    user_id: int | None = None
    user_name: str | None = None
    role: str | None = None
    token_id: int | None = None
    # The owner what it makes gets (a user's: the active one, `spell owner`; a run's, a
    # workflow's, a search's: its run's or search's), and the owners it sees (None: all).
    owner: str | None = None
    owners: frozenset[str] | None = None

    @property
    def is_admin(self) -> bool:
        return Scope.admin in self.scopes

    @property
    def is_user(self) -> bool:
        """Any user's token (admin or member), not a run's, a workflow's or a search's."""
        return self.is_admin or Scope.user in self.scopes

    @property
    def sees_all(self) -> bool:
        """Sees every run: an admin's token."""
        return self.is_user and self.owners is None

    def sees_run(self, run: Run) -> bool:
        if self.is_user:
            return sees(self.owners, run.owner)
        if self.workflow_id is not None and run.workflow_id == self.workflow_id:
            return True
        return self.run_id is not None and run.id == self.run_id

    def sees_search(self, search_id: int) -> bool:
        return self.is_user or self.hyper_search_id == search_id  # a member's: by owner


# The server's own doings (no request): an admin's, making what it makes the first admin's.
ADMIN = Principal(kind="admin", scopes=KIND_SCOPES["admin"], owner=FIRST_ADMIN)
ANONYMOUS = Principal(kind="anonymous", scopes=frozenset())

F = TypeVar("F", bound=Callable[..., Any])


def scoped(scope: Scope) -> Callable[[F], F]:
    """Declare the scope a route needs (put it under ``@router.get(...)``)."""
    def mark(endpoint: F) -> F:
        endpoint.required_scope = scope  # type: ignore[attr-defined]
        return endpoint
    return mark


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_secret_file(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (no window where others could read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _add(session: Session, name: str, kind: str, **tied: int | None) -> str:
    token = new_token()
    scopes = " ".join(sorted(s.value for s in KIND_SCOPES[kind]))
    session.add(Token(token_hash=hash_token(token), name=name, kind=kind, scopes=scopes,
                      **tied))
    return token


def issue_user_token(session: Session, user: User, kind: str, name: str,
                     expires_at: datetime | None = None) -> str:
    """A token that speaks for ``user`` (kind session, access or login); shown once."""
    token = new_token()
    session.add(Token(token_hash=hash_token(token), name=name, kind=kind, scopes="",
                      user_id=user.id, expires_at=expires_at))
    return token


def ensure_admin_token(session: Session, token_file: Path) -> None:
    """The first start makes the admin user and their token; later starts keep them (and
    re-register the token if the DB is new but the file is not)."""
    admin = session.scalar(select(User).where(User.name == ADMIN_USER))
    if admin is None:  # the migration makes it; a DB someone emptied gets it back
        admin = User(name=ADMIN_USER, role="admin")
        session.add(admin)
        session.flush()
    if token_file.exists():
        token = token_file.read_text().strip()
    else:
        token = new_token()
        write_secret_file(token_file, token)
    digest = hash_token(token)
    row = session.scalar(select(Token).where(Token.token_hash == digest))
    if row is None:
        session.add(Token(token_hash=digest, name="admin", kind="admin", scopes="admin",
                          user_id=admin.id))
    elif row.user_id is None and row.kind == "admin":
        row.user_id = admin.id
    session.commit()


def issue_run_token(session: Session, run_id: int, workflow_id: int | None = None) -> str:
    """A run's own token; a workflow manager's (``workflow_id`` = its own number) may also
    start and control the runs of its workflow."""
    if workflow_id is not None and workflow_id == run_id:
        return _add(session, f"workflow {run_id}", "workflow", run_id=run_id,
                    workflow_id=workflow_id)
    return _add(session, f"run {run_id}", "run", run_id=run_id)


def issue_search_token(session: Session, search_id: int) -> str:
    """The token a search's driver (and its trial actors) speak to the server with."""
    return _add(session, f"search {search_id}", "search", hyper_search_id=search_id)


def revoke_search_tokens(session: Session, search_id: int) -> None:
    for token in session.scalars(select(Token).where(Token.hyper_search_id == search_id)):
        token.revoked = True


def revoke_run_tokens(session: Session, run_id: int) -> None:
    for token in session.scalars(select(Token).where(Token.run_id == run_id)):
        token.revoked = True


def find_token(session: Session, secret: str) -> Token | None:
    return session.scalar(select(Token).where(Token.token_hash == hash_token(secret.strip())))


def refuse_if_dead(token: Token) -> None:
    """401 for a token that was revoked (deleted, logged out, its run ended) or expired."""
    if token.revoked:
        raise Unauthorized(f"token revoked (deleted, logged out, or its run ended): {WHAT_TO_DO}")
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized(f"token expired: {WHAT_TO_DO}")


def touch(session: Session, token: Token) -> None:
    """Record the token's use, at most once per TOUCH_EVERY (see there). Best effort: a
    busy database never fails the request it serves."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    try:
        session.execute(update(Token).where(Token.id == token.id).values(last_used_at=now))
        session.commit()
    except OperationalError as exc:
        session.rollback()
        log.warning("could not record token %s's use: %s", token.id, exc)


def check_token(session: Session, header: str | None) -> Token:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("no token: the server needs 'Authorization: Bearer <token>'")
    token = find_token(session, header.removeprefix("Bearer "))
    if token is None:
        raise Unauthorized("wrong token: run spell login (the admin's token is in "
                           "SPELLRAY_HOME/token)")
    refuse_if_dead(token)
    if token.kind == "login":
        raise Unauthorized("this is a one-time login token: run spell login --token TOKEN "
                           "to exchange it for a lasting one")
    touch(session, token)
    return token


def with_owners(session: Session, principal: Principal, asked: str | None) -> Principal:
    """The owners ``principal`` sees and the one it makes things for: a user's own name,
    or ``asked`` (the SDK's X-Spellray-Owner: `spell owner NAME`) if they may use it; a
    run's, workflow's or search's token: its run's or search's owner."""
    if principal.user_name is not None:
        owners = seen_by(session, principal.user_name)
        owner = (asked or "").strip() or principal.user_name
        if owners is not None and owner not in owners:
            raise Forbidden(f"{principal.user_name} may not use the owner {owner!r}: spell "
                            "owner lists yours (ask an admin: spell teams add TEAM USER)")
        if owners is None and owner != principal.user_name and not exists(session, owner):
            raise NotFound(f"there is no user or team {owner!r}; spell owner lists them")
        return replace(principal, owner=owner, owners=owners)
    owner = None
    if principal.run_id is not None:
        run = session.get(Run, principal.run_id)
        owner = run.owner if run is not None else None
    elif principal.hyper_search_id is not None:
        search = session.get(HyperSearch, principal.hyper_search_id)
        owner = search.owner if search is not None else None
    if principal.kind == "admin":  # an admin token of no user (an old DB's): sees all
        return replace(principal, owner=FIRST_ADMIN, owners=None)
    return replace(principal, owner=owner or FIRST_ADMIN,
                   owners=seen_by(session, owner or FIRST_ADMIN))


def principal_of(token: Token) -> Principal:
    if token.kind in USER_KINDS and token.user is not None:
        user = token.user
        return Principal(kind=token.kind, scopes=ROLE_SCOPES.get(user.role, frozenset()),
                         user_id=user.id, user_name=user.name, role=user.role,
                         token_id=token.id)
    scopes = frozenset(Scope(s) for s in token.scopes.split() if s in Scope._value2member_map_)
    return Principal(kind=token.kind, scopes=scopes, run_id=token.run_id,
                     workflow_id=token.workflow_id, hyper_search_id=token.hyper_search_id,
                     token_id=token.id)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None  # not a number: the route's own validation answers


def _reused(session: Session, principal: Principal, run_id: int) -> bool:
    """A step an earlier workflow ran and this one reused (``idempotent=True``)."""
    if principal.workflow_id is None:
        return False
    manager = session.get(Run, principal.workflow_id)
    return manager is not None and run_id in (manager.spec or {}).get("reused", [])


def _in_workflow(session: Session, principal: Principal, workflow_id: int) -> bool:
    """The manager's token sees its workflow, and so does a child's own token (Spell's
    ``client.active_workflow`` inside one of the workflow's runs); what each may do there
    is its scopes' business (a child's may only read)."""
    if principal.workflow_id == workflow_id:
        return True
    if principal.run_id is None:
        return False
    run = session.get(Run, principal.run_id)
    return run is not None and run.workflow_id == workflow_id


def _refuse_hidden(session: Session, principal: Principal, route_path: str,
                   path_params: dict[str, Any]) -> None:
    """404 for another owner's thing, as if it did not exist."""
    what = hidden(session, principal.owners, route_path, path_params, ids=principal.is_user)
    if what is None:
        return
    if what.startswith("run "):
        raise RunNotFound(f"there is no {what}; spell ps lists the runs")
    if what.startswith("workflow "):
        raise NotFound(f"there is no {what}; spell workflow list lists them")
    if what.startswith("search "):
        raise NotFound(f"there is no {what}; spell hyper list lists them")
    raise NotFound(f"there is no {what}")


def check_access(session: Session, principal: Principal, scope: Scope,
                 path_params: dict[str, Any], route_path: str = "") -> None:
    """404 for what the principal may not see, then 403 for what it may not do."""
    if principal.is_admin or scope in (Scope.authenticated, Scope.public):
        return
    if principal.is_user:  # a member: their own and their teams' things, nobody else's
        _refuse_hidden(session, principal, route_path, path_params)
        if scope == Scope.admin:
            raise Forbidden(f"only an admin may do this ({principal.user_name} is a "
                            f"{principal.role}); ask an admin")
        return
    _refuse_hidden(session, principal, route_path, path_params)  # links, models: by owner
    run_id = _int(path_params.get("run_id"))
    if run_id is not None:
        run = session.get(Run, run_id)
        if run is None or not (principal.sees_run(run) or _reused(session, principal, run_id)):
            raise RunNotFound(f"there is no run {run_id}; spell ps lists the runs")
        if scope in OWN_RUN and run_id != principal.run_id:
            raise Forbidden(f"this {principal.kind} token may not {scope.value} for run "
                            f"{run_id}; only for its own run")
    workflow_id = _int(path_params.get("workflow_id"))
    if workflow_id is not None and not _in_workflow(session, principal, workflow_id):
        raise NotFound(f"there is no workflow {workflow_id}; spell workflow list lists them")
    search_id = _int(path_params.get("search_id"))
    if search_id is not None and not principal.sees_search(search_id):
        raise NotFound(f"there is no search {search_id}; spell hyper list lists them")
    if scope not in principal.scopes:
        raise Forbidden(f"this {principal.kind} token may not do this ({scope.value} is "
                        "needed); use a user's token (spell login)")


def authorize(request: Request) -> Principal:
    """The app's one dependency: the request's token, checked against its route's scope."""
    route = request.scope.get("route")
    scope = getattr(getattr(route, "endpoint", None), "required_scope", Scope.user)
    if scope == Scope.public:  # logging in: no token yet
        request.state.principal = ANONYMOUS
        return ANONYMOUS
    with request.app.state.ctx.sessions() as session:
        principal = principal_of(check_token(session, request.headers.get("authorization")))
        principal = with_owners(session, principal, request.headers.get(OWNER_HEADER))
        check_access(session, principal, scope, request.path_params,
                     getattr(route, "path", ""))
    request.state.principal = principal
    return principal


def current_principal(request: Request) -> Principal:
    """For services that filter by who asks (a workflow's runs): set by ``authorize``."""
    return getattr(request.state, "principal", ADMIN)


# A route's argument for who asks (``caller: Caller``).
Caller = Annotated[Principal, Depends(current_principal)]

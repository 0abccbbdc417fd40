"""The browser's way in: one login for every page the server shows a browser (MLflow's UI
under /mlflow, TensorBoard under /tensorboard, and later Jupyter and the console).

Programs send ``Authorization: Bearer <token>``; a browser cannot. So a CLI command asks the
API for a one-time login URL (``<prefix>/login?code=``, valid for two minutes); opening it
sets an HttpOnly session cookie and redirects to the page. The code is useless once used, so
a URL left in a browser history or a terminal opens nothing. The cookie is set once per
browser-facing prefix (one ``Set-Cookie`` each, same session), so logging in through
`spell ui` opens TensorBoard too, while the cookie is never sent to /api (the API stays
token-only: no cross-site request can act on it). A scoped family (workspaces) is the
exception: its link logs the browser into one workspace alone (a session and cookie for
/workspaces/NAME only), so one workspace's link opens no other. Sessions live in the
server's memory (a restart logs browsers out).

Each session remembers whose it is (the user whose token asked for the link): the gate puts
that user's name in the request's scope (``VIEWER``) for the backends that filter by owner
(the console), and a member may not open MLflow's UI at all (``members_refused``: it cannot
filter by owner).

An ASGI middleware rather than mounted apps: FastAPI's token dependency does not reach
mounted apps, websockets must be gated too, and the backends (MLflow served with
``--static-prefix``, TensorBoard with ``--path_prefix``) want the full path.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from spellray.errors import Forbidden, SpellrayError, Unauthorized
from spellray.server.auth import check_token, hash_token, principal_of
from spellray.server.db import User

log = logging.getLogger(__name__)

COOKIE = "spellray_ui"
CODE_SECONDS = 120
SESSION_SECONDS = 12 * 3600
# A websocket refused before it opened: the ASGI server answers the handshake with 403.
WS_POLICY_VIOLATION = 1008
# The ASGI scope's key for the user a let-in request speaks for (None: a token of no user,
# which sees everything it may open: an admin token of an old DB, a run's for MLflow).
VIEWER = "spellray.viewer"


class BrowserSessions:
    """One-time login codes and the browser sessions they open, by hash, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # hash -> (expires, page to open, scope, user)
        self._codes: dict[str, tuple[float, str, str | None, str | None]] = {}
        # hash -> (expires, scope, user)
        self._sessions: dict[str, tuple[float, str | None, str | None]] = {}

    def issue_code(self, page: str, scope: str | None = None, user: str | None = None) -> str:
        """A one-time code that opens ``page`` (an absolute path on this server). ``scope``:
        a path (/workspaces/NAME) the session it opens is limited to; None: the unscoped
        families (MLflow, TensorBoard). ``user``: whose the session is (None: no user's,
        an admin's token of no user)."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._expire()
            self._codes[hash_token(code)] = (time.time() + CODE_SECONDS, page, scope, user)
        return code

    def login_path(self, prefix: str, page: str, scope: str | None = None,
                   user: str | None = None) -> str:
        """The one-time URL path that logs a browser in (as ``user``) and opens ``page``."""
        return f"{prefix}/login?code={self.issue_code(page, scope, user)}"

    def redeem(self, code: str) -> tuple[str, str, str | None] | None:
        """(a new session, the page to open, its scope) for a valid code, which is then
        used up."""
        with self._lock:
            self._expire()
            found = self._codes.pop(hash_token(code), None)
            if found is None:
                return None
            session = secrets.token_urlsafe(32)
            self._sessions[hash_token(session)] = (time.time() + SESSION_SECONDS, found[2],
                                                   found[3])
            return session, found[1], found[2]

    def valid(self, session: str, scope: str | None = None) -> bool:
        """Whether ``session`` is alive and opens ``scope`` (None: the unscoped families)."""
        with self._lock:
            expires, own, _user = self._sessions.get(hash_token(session), (0.0, None, None))
            return expires > time.time() and own == scope

    def user_of(self, session: str) -> str | None:
        """Whose ``session`` is (None: no user's, or no such session)."""
        with self._lock:
            return self._sessions.get(hash_token(session), (0.0, None, None))[2]

    def forget(self, scope: str) -> None:
        """End every session of ``scope`` (a workspace that is removed)."""
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v[1] != scope}

    def _expire(self) -> None:
        now = time.time()
        self._codes = {k: v for k, v in self._codes.items() if v[0] > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v[0] > now}


# What a gated path serves once a request is let in: given the request's scope and the
# app's state, the ASGI app to hand it to (may raise a SpellrayError, answered as the API's).
Backend = Callable[[Scope, Any], Awaitable[ASGIApp]]


@dataclass(frozen=True)
class BrowserPath:
    """A path family the server shows browsers, behind the API's tokens or a session."""

    prefix: str  # "/mlflow": the family is the prefix and everything under it
    backend: Backend
    command: str  # the CLI command that prints a login link: "spell ui"
    refused: str  # what a 401 says to do
    # Bearer tokens let in: any valid one (MLflow: runs log with their own), or users only,
    # or (admins_only) an admin's only.
    any_token: bool = False
    admins_only: bool = False
    # A member's token or session may not come in (MLflow: it cannot filter by owner; the
    # runs' own tokens still log there).
    members_refused: bool = False
    # Scoped families: a session opens one member alone (/workspaces/NAME), the first path
    # segment under the prefix; its cookie is sent to that member only.
    scoped: bool = False
    # The family's cookie: its own name where its path would overlap another family's (the
    # console's is sent everywhere), so a request never carries two of one name.
    cookie: str = COOKIE
    # State-changing requests with the cookie also need the session's CSRF token (the
    # console's forms and buttons send it as X-CSRF-Token).
    csrf: bool = False

    def holds(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    @property
    def cookie_path(self) -> str:
        return self.prefix or "/"

    async def deny(self, scope: Scope, send: Send, exc: SpellrayError) -> None:
        """Answer a request that was not let in (the console redirects its pages)."""
        await refuse(scope, send, exc)

    def scope_of(self, path: str) -> str | None:
        """The member of a scoped family ``path`` is in (None: unscoped, or the prefix)."""
        if not self.scoped:
            return None
        member = path.removeprefix(self.prefix + "/").split("/", 1)[0]
        return f"{self.prefix}/{member}" if member and self.holds(path) else None


class BrowserGate:
    """Gates each ``BrowserPath`` (HTTP and websockets); everything else passes through."""

    def __init__(self, app: ASGIApp, paths: Sequence[BrowserPath]) -> None:
        self.app = app
        self.paths = list(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        gated = next((p for p in self.paths if p.holds(path)), None) \
            if scope["type"] in ("http", "websocket") else None
        if gated is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        if scope["type"] == "http" and path == gated.prefix:
            await respond(send, 307, b"", [(b"location", f"{gated.prefix}/".encode())])
        elif scope["type"] == "http" and path == f"{gated.prefix}/login":
            await self._login(scope, send, state.browser_sessions, gated)
        elif not (how := await self._allowed(scope, state, gated)):
            await gated.deny(scope, send, Unauthorized(gated.refused))
        elif how.startswith("kind:"):  # a valid token whose kind or role may not come in
            who = "a member's" if how == "kind:member" else f"a {how[5:]}"
            admins = gated.admins_only or gated.members_refused
            await refuse(scope, send, Forbidden(
                f"{who} token may not open {gated.prefix or '/'}: use "
                f"{'an admin' if admins else 'a user'}'s token (spell login)"
                + (" (it shows every owner's runs)" if gated.members_refused else "")))
        elif how == "cookie" and gated.csrf and not csrf_ok(scope, gated):
            await refuse(scope, send, Forbidden(
                "this request needs the page's CSRF token: reload the page and try again"))
        else:
            try:
                backend = await gated.backend(scope, state)
            except SpellrayError as exc:
                await refuse(scope, send, exc)
                return
            await backend(scope, receive, send)

    async def _allowed(self, scope: Scope, state: Any, gated: BrowserPath) -> str | None:
        """How the request is let in ("token" or "cookie"), or None (no valid token), or
        "kind:K" (a valid token of a kind or role K that may not come in: a 403)."""
        headers = dict(scope["headers"])
        if authorization := headers.get(b"authorization"):
            def check() -> str | None:
                with state.ctx.sessions() as session:
                    try:
                        token = check_token(session, authorization.decode("latin-1"))
                    except SpellrayError:
                        return None
                    principal = principal_of(token)
                    scope[VIEWER] = principal.user_name
                    member_here = principal.is_user and not principal.is_admin
                    if member_here and gated.members_refused:
                        return "kind:member"
                    if gated.any_token or (principal.is_admin if gated.admins_only
                                           else principal.is_user):
                        return "token"
                    return f"kind:{principal.role if principal.is_user else principal.kind}"

            return await run_in_threadpool(check)
        session = session_cookie(scope, gated.cookie)
        if session is None:
            return None
        member = gated.scope_of(scope["path"])
        if gated.scoped and member is None:
            return None  # the bare prefix of a scoped family is no member's
        if not state.browser_sessions.valid(session, member):
            return None
        scope[VIEWER] = state.browser_sessions.user_of(session)
        # A member's session may not open what is for admins (Ray's dashboard) or what
        # cannot filter by owner (MLflow).
        if (gated.members_refused or gated.admins_only) and scope[VIEWER] is not None:
            def role() -> str | None:
                with state.ctx.sessions() as db_session:
                    return db_session.scalar(select(User.role).where(User.name == scope[VIEWER]))

            if await run_in_threadpool(role) != "admin":
                return "kind:member"
        return "cookie"

    async def _login(self, scope: Scope, send: Send, sessions: BrowserSessions,
                     gated: BrowserPath) -> None:
        code = parse_qs(scope.get("query_string", b"").decode()).get("code", [""])[0]
        found = sessions.redeem(code) if code else None
        if found is None:
            await respond(send, 401, f"This login link was used already or has expired: "
                          f"run `{gated.command}` for a new one.\n".encode(),
                          [(b"content-type", b"text/plain; charset=utf-8")])
            return
        session, page, member = found
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        # One cookie per unscoped browser-facing family: one login opens them all, and /api
        # never acts on it. A scoped session's one cookie goes to its member alone.
        # (Families that share a cookie and its path share one Set-Cookie.)
        places = [(gated.cookie, member)] if member else \
            list(dict.fromkeys((p.cookie, p.cookie_path) for p in self.paths if not p.scoped))
        cookies = [(b"set-cookie", (f"{name}={session}; Path={where}; HttpOnly; "
                                    f"SameSite=Lax; Max-Age={SESSION_SECONDS}{secure}").encode())
                   for name, where in places]
        await respond(send, 303, b"", [(b"location", page.encode()), *cookies,
                                       (b"cache-control", b"no-store")])


def session_cookie(scope: Scope, name: str = COOKIE) -> str | None:
    """The browser session a request carries in cookie ``name``, if any."""
    raw = dict(scope["headers"]).get(b"cookie", b"").decode("latin-1")
    try:
        cookie = SimpleCookie(raw)
    except CookieError:
        return None
    return cookie[name].value if name in cookie else None


def csrf_token(session: str) -> str:
    """The CSRF token of a browser session: derived from its secret, so nothing more is
    kept, and useless to anyone who cannot read the page (the cookie is HttpOnly)."""
    return hash_token(f"csrf:{session}")[:32]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_ok(scope: Scope, gated: BrowserPath) -> bool:
    if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
        return True
    session = session_cookie(scope, gated.cookie)
    sent = dict(scope["headers"]).get(b"x-csrf-token", b"").decode("latin-1")
    return session is not None and secrets.compare_digest(sent, csrf_token(session))


async def refuse(scope: Scope, send: Send, exc: SpellrayError) -> None:
    """The API's error format (error_handlers.error_response), from plain ASGI; a websocket
    is closed before it opens (the handshake fails)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION,
                    "reason": exc.message[:120]})
        return
    body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
    await respond(send, exc.http_status, body, [(b"content-type", b"application/json")])


async def respond(send: Send, status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

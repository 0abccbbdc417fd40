"""The way in to MLflow under /mlflow: spellray's tokens guard it like the rest of the API.

MLflow clients (a run's ``mlflow``, with MLFLOW_TRACKING_TOKEN) send ``Authorization: Bearer``.
A browser cannot, so `spell ui` asks the API for a one-time login URL (``/mlflow/login?code=``,
valid for two minutes); opening it sets an HttpOnly session cookie scoped to /mlflow and
redirects to the UI. The code is useless once used, so a URL left in a browser history or a
terminal opens nothing; sessions live in the server's memory (a restart logs browsers out).

An ASGI middleware rather than a mounted app: FastAPI's token dependency does not reach
mounted apps, and MLflow (served with ``--static-prefix /mlflow``) wants the full path.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from spellray.errors import ServerUnavailable, SpellrayError, Unauthorized
from spellray.server.auth import check_token, hash_token
from spellray.server.tracking import PREFIX

log = logging.getLogger(__name__)

COOKIE = "spellray_ui"
CODE_SECONDS = 120
SESSION_SECONDS = 12 * 3600


class UiSessions:
    """One-time login codes and the browser sessions they open, by hash, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[float, str]] = {}  # hash -> (expires, page to open)
        self._sessions: dict[str, float] = {}  # hash -> expires

    def issue_code(self, page: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._expire()
            self._codes[hash_token(code)] = (time.time() + CODE_SECONDS, page)
        return code

    def redeem(self, code: str) -> tuple[str, str] | None:
        """(a new session, the page to open) for a valid code, which is then used up."""
        with self._lock:
            self._expire()
            found = self._codes.pop(hash_token(code), None)
            if found is None:
                return None
            session = secrets.token_urlsafe(32)
            self._sessions[hash_token(session)] = time.time() + SESSION_SECONDS
            return session, found[1]

    def valid(self, session: str) -> bool:
        with self._lock:
            return self._sessions.get(hash_token(session), 0) > time.time()

    def _expire(self) -> None:
        now = time.time()
        self._codes = {k: v for k, v in self._codes.items() if v[0] > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}


class TrackingGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        if path == PREFIX:
            await _respond(send, 307, b"", [(b"location", f"{PREFIX}/".encode())])
        elif path == f"{PREFIX}/login":
            await self._login(scope, send, state.ui_sessions)
        elif not await self._allowed(scope, state):
            await _error(send, Unauthorized(
                "no token or a wrong one: MLflow clients need MLFLOW_TRACKING_TOKEN "
                "(a spellray token); browsers: open the URL `spell ui` prints"))
        else:
            try:
                mlflow = await run_in_threadpool(state.ctx.tracking.asgi_app)
            except Exception as exc:
                log.exception("MLflow could not be loaded")
                await _error(send, ServerUnavailable(
                    f"MLflow could not be loaded: {type(exc).__name__}: {exc} "
                    "(see SPELLRAY_HOME/logs/server.log)"))
                return
            await mlflow(scope, receive, send)

    async def _allowed(self, scope: Scope, state: Any) -> bool:
        headers = dict(scope["headers"])
        if authorization := headers.get(b"authorization"):
            def check() -> bool:
                with state.ctx.sessions() as session:
                    try:
                        check_token(session, authorization.decode("latin-1"))
                        return True
                    except SpellrayError:
                        return False

            return await run_in_threadpool(check)
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        return COOKIE in cookie and state.ui_sessions.valid(cookie[COOKIE].value)

    async def _login(self, scope: Scope, send: Send, sessions: UiSessions) -> None:
        code = parse_qs(scope.get("query_string", b"").decode()).get("code", [""])[0]
        found = sessions.redeem(code) if code else None
        if found is None:
            await _respond(send, 401, b"This login link was used already or has expired: "
                           b"run `spell ui` for a new one.\n",
                           [(b"content-type", b"text/plain; charset=utf-8")])
            return
        session, page = found
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (f"{COOKIE}={session}; Path={PREFIX}; HttpOnly; SameSite=Lax; "
                  f"Max-Age={SESSION_SECONDS}{secure}")
        await _respond(send, 303, b"", [(b"location", f"{PREFIX}/{page}".encode()),
                                        (b"set-cookie", cookie.encode()),
                                        (b"cache-control", b"no-store")])


async def _error(send: Send, exc: SpellrayError) -> None:
    """The API's error format (error_handlers.error_response), from plain ASGI."""
    body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
    await _respond(send, exc.http_status, body, [(b"content-type", b"application/json")])


async def _respond(send: Send, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

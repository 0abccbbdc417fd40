"""The console as a browser path family (browser_sessions.py): its pages live at plain
paths (/, /runs/7, /searches/3, /workspaces, ...), its cookie is its own (spellray_console,
Path=/, so it never shadows a workspace's), and every state-changing request also needs the
session's CSRF token. Without a login, a page is a redirect to a short "run `spell ui`" page
and anything else (htmx partials, JSON, actions) is 401."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Scope, Send

from spellray.errors import SpellrayError
from spellray.server.browser_sessions import BrowserPath, refuse, respond

CONSOLE_COOKIE = "spellray_console"
# The first path segments the console owns ("" is the runs page at /). /workspaces alone is
# the console's page of workspaces; /workspaces/NAME/... is that workspace's Jupyter.
ROOTS = frozenset({"", "login", "runs", "searches", "workflows", "models", "model-servers",
                   "cluster"})
WELCOME = "/static/welcome.html"


async def _console(scope: Scope, state: Any) -> ASGIApp:
    return state.console_app


@dataclass(frozen=True)
class ConsolePath(BrowserPath):
    def holds(self, path: str) -> bool:
        return path == "/workspaces" or path.split("/", 2)[1] in ROOTS

    @property
    def cookie_path(self) -> str:
        return "/"

    async def deny(self, scope: Scope, send: Send, exc: SpellrayError) -> None:
        headers = dict(scope["headers"])
        page = scope["type"] == "http" and scope["method"] == "GET" and \
            b"hx-request" not in headers and b"text/html" in headers.get(b"accept", b"")
        if page:  # a person opening a page: say how to log in
            await respond(send, 303, b"", [(b"location", WELCOME.encode()),
                                           (b"cache-control", b"no-store")])
        else:
            await refuse(scope, send, exc)


CONSOLE = ConsolePath(
    prefix="", backend=_console, command="spell ui", cookie=CONSOLE_COOKIE, csrf=True,
    refused="log in first: run `spell ui` and open the link it prints; programs send "
            "'Authorization: Bearer <token>' (an admin token)")

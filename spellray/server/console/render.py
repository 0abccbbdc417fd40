"""Rendering console pages: one Jinja2 environment (autoescaped: a run's command, labels and
log are text, never markup), the filters pages share, and what every page gets (the
session's CSRF token, which htmx sends with each state-changing request)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from spellray.humanize import ago, duration, run_duration, size
from spellray.server.browser_sessions import csrf_token, session_cookie
from spellray.server.console.gate import CONSOLE_COOKIE
from spellray.web import TEMPLATES_DIR

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


templates.env.filters.update(ago=ago, duration=duration, size=size)
templates.env.globals.update(run_duration=run_duration)


def csrf_of(request: Request) -> str:
    """The CSRF token of the request's console session ("" for a Bearer token's request,
    which needs none)."""
    session = session_cookie(request.scope, CONSOLE_COOKIE)
    return csrf_token(session) if session else ""


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"csrf": csrf_of(request), **(context or {})},
        status_code=status_code, headers=headers)

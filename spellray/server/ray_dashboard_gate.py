"""Ray's dashboard under /ray/..., as a browser path (browser_sessions.py): admins only (an
admin token, or the console's session) and reading only. Ray's Jobs API runs any code, so
nothing but GET and HEAD goes through; the user never needs the dashboard's own port, which
stays on the head's loopback."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.types import ASGIApp, Scope

from spellray.cluster.ray_auth import http_headers
from spellray.errors import Forbidden
from spellray.server.browser_sessions import BrowserPath
from spellray.server.console.gate import CONSOLE_COOKIE

PREFIX = "/ray"
READING = frozenset({"GET", "HEAD"})


async def _dashboard(scope: Scope, state: Any) -> ASGIApp:
    if scope["type"] != "http" or scope["method"] not in READING:
        raise Forbidden("Ray's dashboard is read-only through spellray (GET): stop or kill "
                        "runs with spell stop / spell kill or the console")
    # Ray's token is added here and never reaches the browser (nor the user's own: the
    # proxy drops the request's Authorization header).
    ray_token = [(k.lower().encode(), v.encode()) for k, v in http_headers().items()]
    return partial(state.reverse_proxy, backend=state.ctx.ray.address.rstrip("/"),
                   upstream_headers=ray_token, strip=PREFIX,
                   unavailable="Ray's dashboard does not answer; spell cluster status says "
                   "whether Ray is up")


@dataclass(frozen=True)
class DashboardPath(BrowserPath):
    @property
    def cookie_path(self) -> str:
        return "/"  # the console's cookie, which is sent everywhere already


RAY_DASHBOARD = DashboardPath(
    prefix=PREFIX, backend=_dashboard, command="spell ui", cookie=CONSOLE_COOKIE,
    admins_only=True,
    refused="admins only: open the console with `spell ui` (the Ray dashboard is linked "
            "there); programs send 'Authorization: Bearer <token>' (an admin token)")

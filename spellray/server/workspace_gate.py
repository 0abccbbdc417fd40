"""Jupyter workspaces under /workspaces/NAME/..., as a scoped browser path
(browser_sessions.py): an admin token, or a session from that workspace's own one-time link,
lets a request in; the reverse proxy then relays it, path unchanged (Jupyter's base_url is
/workspaces/NAME/), to Jupyter on its node's private address, adding Jupyter's token. The
browser never holds that token, and nothing but this server reaches Jupyter."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Scope

from spellray.errors import NotFound, Unauthorized
from spellray.server import db
from spellray.server.browser_sessions import VIEWER, BrowserPath
from spellray.server.ownership import sees, viewer_owners
from spellray.server.services.workspaces import PREFIX, WorkspaceService


def _same_origin(scope: Scope) -> bool:
    """A browser's websocket comes from a page of this server: Jupyter itself skips its
    origin check for token-authenticated requests, which all proxied ones are, so the
    check is made here (a cross-site page cannot open a kernel with the user's cookie)."""
    headers = dict(scope["headers"])
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not a browser
    return urlsplit(origin.decode("latin-1")).netloc == headers.get(b"host", b"").decode()


def _seen(state: Any, name: str, viewer: str | None) -> bool:
    """Another owner's workspace is not there for the viewer (as if not running)."""
    with state.ctx.sessions() as session:
        row = session.get(db.Workspace, name)
        return row is None or sees(viewer_owners(session, viewer), row.owner)


async def _workspace(scope: Scope, state: Any) -> ASGIApp:
    name = scope["path"].removeprefix(PREFIX).strip("/").split("/", 1)[0]
    if scope["type"] == "websocket" and not _same_origin(scope):
        raise Unauthorized("a websocket into a workspace must come from this server's pages")
    service = WorkspaceService(state.ctx)
    seen = await run_in_threadpool(_seen, state, name, scope.get(VIEWER))
    backend = await run_in_threadpool(service.backend, name) if seen else None
    if backend is None:
        raise NotFound(f"workspace {name!r} is not running: spell jupyter {name} starts it "
                       "(spell workspaces lists them)")
    return partial(state.reverse_proxy, backend=backend.address,
                   unavailable=f"workspace {name}'s Jupyter does not answer; it may be "
                               f"stopping: spell workspaces shows its status",
                   upstream_headers=[(b"authorization", f"token {backend.token}".encode())])


WORKSPACES = BrowserPath(
    prefix=PREFIX, backend=_workspace, command="spell jupyter NAME", scoped=True,
    refused="no token or a wrong one: browsers open the link `spell jupyter NAME` prints "
            "(it opens that workspace alone); programs send 'Authorization: Bearer <token>' "
            "(an admin token)")

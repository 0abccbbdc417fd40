"""The console's ASGI app: HTML pages from the same services the API uses (no second API),
rendered with Jinja2. It is not mounted on the server's app: the browser gate hands it the
requests the console family holds (gate.py), once they are let in."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute

from spellray.errors import InvalidInput, SpellrayError
from spellray.server.console import cluster, runs, searches, serving, workflows, workspaces
from spellray.server.console.render import render
from spellray.server.console.viewer import refuse_hidden

# Every page family of the console, in one place: the app includes each, and the security
# tests enumerate every route from here.
ROUTERS = (runs.router, searches.router, workflows.router, workspaces.router,
           serving.router, cluster.router)


def console_routes() -> list[tuple[str, str]]:
    """(method, path template) of every console route."""
    return [(method, route.path) for router in ROUTERS for route in router.routes
            if isinstance(route, APIRoute) for method in sorted(route.methods)]


def create_console(server_state: Any) -> FastAPI:
    """The console, reading the server's state (its context, sessions) from ``server_state``."""
    # Every page and action: another owner's thing in its path is not there (viewer.py).
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None,
                      dependencies=[Depends(refuse_hidden)])
    console.state.server = server_state
    for router in ROUTERS:
        console.include_router(router)

    @console.exception_handler(SpellrayError)
    async def _error(request: Request, exc: SpellrayError) -> Response:
        if request.headers.get("hx-request"):  # an action: its message, shown by console.js
            return PlainTextResponse(exc.message, status_code=exc.http_status)
        return render(request, "error.html", {"message": exc.message},
                      status_code=exc.http_status)

    @console.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]  # a page's number out of range, say: the error page, a 400
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return await _error(request, InvalidInput(f"{where}: {first.get('msg', 'invalid')}"))

    return console

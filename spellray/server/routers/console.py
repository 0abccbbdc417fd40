"""HTTP route for the console's login link (thin; services/console.py). The console's pages
are served by server/console/ behind the browser gate."""

from __future__ import annotations

from fastapi import APIRouter, Request

from spellray.schemas import UiLogin
from spellray.schemas.base import DbId
from spellray.server.auth import Caller
from spellray.server.services.console import ConsoleService

router = APIRouter(prefix="/api/console", tags=["console"])


# Users only (no @scoped): the console shows what its user sees.
@router.post("/login", response_model=UiLogin)
def console_login(request: Request, caller: Caller, run_id: DbId | None = None) -> UiLogin:
    state = request.app.state
    return ConsoleService(state.ctx, state.browser_sessions).login(run_id, caller)

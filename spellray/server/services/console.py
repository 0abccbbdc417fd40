"""The console's one-time logins (spell ui): a link that logs a browser in to the console
(and MLflow and TensorBoard with it) and opens the runs page or one run's page."""

from __future__ import annotations

from spellray.errors import RunNotFound
from spellray.schemas import UiLogin
from spellray.server.auth import ADMIN, Principal
from spellray.server.browser_sessions import CODE_SECONDS, BrowserSessions
from spellray.server.context import ServerContext
from spellray.server.ownership import sees
from spellray.server.services.runs import RunService


class ConsoleService:
    def __init__(self, ctx: ServerContext, sessions: BrowserSessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def login(self, run_id: int | None = None, principal: Principal = ADMIN) -> UiLogin:
        """A link that logs a browser in as ``principal``'s user: the console then shows
        what that user sees (their own and their teams' things; an admin: all)."""
        page = "/"
        if run_id is not None:
            run = RunService(self.ctx).get(run_id)  # an unknown run says so now
            if not sees(principal.owners, run.owner):
                raise RunNotFound(f"there is no run {run_id}; spell ps lists the runs")
            page = f"/runs/{run_id}"
        return UiLogin(login_path=self.sessions.login_path("", page, user=principal.user_name),
                       expires_in=CODE_SECONDS)

"""The console's one-time logins (spell ui): a link that logs a browser in to the console
(and MLflow and TensorBoard with it) and opens the runs page or one run's page."""

from __future__ import annotations

from spellray.schemas import UiLogin
from spellray.server.browser_sessions import CODE_SECONDS, BrowserSessions
from spellray.server.context import ServerContext
from spellray.server.services.runs import RunService


class ConsoleService:
    def __init__(self, ctx: ServerContext, sessions: BrowserSessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def login(self, run_id: int | None = None) -> UiLogin:
        page = "/"
        if run_id is not None:
            RunService(self.ctx).get(run_id)  # an unknown run says so now, not in the browser
            page = f"/runs/{run_id}"
        return UiLogin(login_path=self.sessions.login_path("", page), expires_in=CODE_SECONDS)

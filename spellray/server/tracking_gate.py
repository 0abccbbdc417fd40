"""MLflow under /mlflow, as a browser path (browser_sessions.py): spellray's tokens guard it
like the rest of the API, and `spell ui`'s one-time link logs a browser in.

MLflow clients (a run's ``mlflow``, with MLFLOW_TRACKING_TOKEN) send ``Authorization:
Bearer``: any valid token is let in, a run's own included (runs log there).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Scope

from spellray.errors import ServerUnavailable
from spellray.server.browser_sessions import BrowserPath
from spellray.server.tracking import PREFIX

log = logging.getLogger(__name__)


async def _mlflow(scope: Scope, state: Any) -> ASGIApp:
    try:
        return await run_in_threadpool(state.ctx.tracking.asgi_app)
    except Exception as exc:
        log.exception("MLflow could not be loaded")
        raise ServerUnavailable(
            f"MLflow could not be loaded: {type(exc).__name__}: {exc} "
            "(see SPELLRAY_HOME/logs/server.log)") from exc


MLFLOW = BrowserPath(
    prefix=PREFIX, backend=_mlflow, command="spell ui", any_token=True, members_refused=True,
    refused="no token or a wrong one: MLflow clients need MLFLOW_TRACKING_TOKEN "
            "(a spellray token); browsers: open the URL `spell ui` prints")

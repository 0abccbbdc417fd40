"""The one function that changes a model server's status, and the map from Ray Serve's
application status onto it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from spellray.errors import Conflict
from spellray.schemas import ModelServerStatus
from spellray.serve.names import DEPLOYMENT
from spellray.server.db import ModelServer, ModelServerEvent, utcnow

S = ModelServerStatus
# No status is terminal: a failed or stopped server is started or updated again. Serve's
# answers move a deployed server between deploying, running, unhealthy and failed; the
# user's serve, update and start make it deploying, stop makes it stopped; a config Serve
# refuses (or a Ray that cannot be reached) fails it, whatever it was.
ALLOWED: dict[ModelServerStatus, frozenset[ModelServerStatus]] = {
    S.deploying: frozenset({S.running, S.unhealthy, S.failed, S.stopped}),
    S.running: frozenset({S.deploying, S.unhealthy, S.failed, S.stopped}),
    S.unhealthy: frozenset({S.deploying, S.running, S.failed, S.stopped}),
    S.failed: frozenset({S.deploying, S.stopped}),
    S.stopped: frozenset({S.deploying, S.failed}),
}
# Statuses whose application should exist in Serve (a failed one stays, with its message).
DEPLOYED = frozenset({S.deploying, S.running, S.unhealthy, S.failed})

# Serve's ApplicationStatus -> a model server's status.
SERVE_STATUS = {"NOT_STARTED": S.deploying, "DEPLOYING": S.deploying, "RUNNING": S.running,
                "DEPLOY_FAILED": S.failed, "UNHEALTHY": S.unhealthy}


def change_model_server_status(session: Session, server: ModelServer,
                               status: ModelServerStatus, reason: str | None = None) -> bool:
    """Move ``server`` to ``status``; return whether it changed. A move ALLOWED does not list
    is a Conflict; the same status with a new reason records the reason."""
    current = S(server.status)
    if status == current and reason == server.status_reason:
        return False
    if status != current and status not in ALLOWED[current]:
        raise Conflict(f"model server {server.name} is {current.value}; "
                       f"it cannot become {status.value}")
    server.status, server.status_reason = status.value, reason
    session.add(ModelServerEvent(model_server_id=server.id, status=status.value, reason=reason,
                                 at=utcnow()))
    return True


def failure_reason(message: str) -> str:
    """One line for a failed deployment: the traceback's last line (the exception)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "Serve reported the deployment failed")[:500]


def serve_messages(app: dict[str, Any]) -> str:
    """What Serve says about an application and its deployment (a failure's traceback)."""
    deployment = (app.get("deployments") or {}).get(DEPLOYMENT) or {}
    return "\n".join(m for m in (app.get("message"), deployment.get("message")) if m)

"""A model server's status and logs, as Ray Serve tells them: the reconciler maps Serve's
application status onto the server's here (one place), and `spell server logs` gathers
Serve's messages (tracebacks of a failed build or replica) and the replicas' log files."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from spellray.serve.names import DEPLOYMENT
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.services.model_servers import ModelServerService

log = logging.getLogger(__name__)

# Serve's ApplicationStatus -> a model server's status.
STATUS = {"NOT_STARTED": "deploying", "DEPLOYING": "deploying", "RUNNING": "running",
          "DEPLOY_FAILED": "failed", "UNHEALTHY": "unhealthy"}
WATCHED = ("deploying", "running", "unhealthy")
LOG_LINES = 200
LOST_GRACE = timedelta(seconds=10)


def failure_reason(message: str) -> str:
    """One line for a failed deployment: the traceback's last line (the exception)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "Serve reported the deployment failed")[:500]


def reconcile_model_servers(ctx: ServerContext) -> None:
    """The reconciler's pass over model servers: follow Serve's status; deploy again what
    Serve lost (a restarted Ray cluster) — the DB is the record of what should run."""
    with ctx.sessions() as session:
        watched = session.scalars(select(db.ModelServer)
                                  .where(db.ModelServer.status.in_(WATCHED))).all()
        if not watched:
            return
        service = ModelServerService(ctx)
        apps = service.serve.details().get("applications") or {}
        lost = False
        for server in watched:
            app = apps.get(server.name)
            if app is None:
                # Not yet in Serve's answer when our own PUT raced this pass.
                lost = lost or db.utcnow() - server.updated_at > LOST_GRACE
                continue
            status = STATUS.get(app.get("status", ""))
            if status is None or status == server.status or \
                    app.get("last_deployed_time_s", 0) < server.updated_at.timestamp():
                continue  # nothing new, or Serve's answer predates our last change
            server.status = status
            server.status_reason = failure_reason(_messages(app)) if status == "failed" \
                else None
            log.info("model server %s is %s", server.name, status)
        session.commit()
    if lost:
        service.apply()


def _messages(app: dict[str, Any]) -> str:
    deployment = (app.get("deployments") or {}).get(DEPLOYMENT) or {}
    return "\n".join(m for m in (app.get("message"), deployment.get("message")) if m)


def server_logs(ctx: ServerContext, name: str, lines: int = LOG_LINES) -> str:
    """Serve's messages about the server, then each replica's log (live ones, and the
    replicas that died recently: a predictor that failed to load)."""
    service = ModelServerService(ctx)
    server = service.get(name)
    app = (service.serve.details().get("applications") or {}).get(name)
    if app is None:
        return f"model server {name} is {server.status}: {server.status_reason or ''}\n"
    parts = [f"== Serve: application {name} is {app.get('status')}"]
    if (messages := _messages(app)):
        parts.append(messages)
    deployment = (app.get("deployments") or {}).get(DEPLOYMENT) or {}
    replicas = [*(deployment.get("replicas") or []),
                *(deployment.get("recent_dead_replicas") or [])]
    for replica in replicas:
        if not replica.get("log_file_path") or not replica.get("node_id"):
            continue
        text = service.serve.log_file(replica["node_id"], replica["log_file_path"].lstrip("/"),
                                      lines)
        if text.strip():
            parts.append(f"== replica {replica.get('replica_id')} ({replica.get('state')})")
            parts.append(text.rstrip())
    return "\n".join(parts) + "\n"

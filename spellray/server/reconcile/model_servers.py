"""Model servers: follow Serve's status, and deploy again what Serve lost (a restarted Ray
cluster): the DB is the record of what should run."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from spellray.schemas import ModelServerStatus
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.services.model_server_status import (
    SERVE_STATUS,
    change_model_server_status,
    failure_reason,
    serve_messages,
)
from spellray.server.services.model_servers import ModelServerService

log = logging.getLogger(__name__)

WATCHED = [s.value for s in (ModelServerStatus.deploying, ModelServerStatus.running,
                             ModelServerStatus.unhealthy)]
# An application missing from Serve's answer this long after our last change was lost.
LOST_GRACE = timedelta(seconds=10)


def reconcile(ctx: ServerContext) -> None:
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
            status = SERVE_STATUS.get(app.get("status", ""))
            if status is None or status.value == server.status or \
                    app.get("last_deployed_time_s", 0) < server.updated_at.timestamp():
                continue  # nothing new, or Serve's answer predates our last change
            reason = failure_reason(serve_messages(app)) \
                if status == ModelServerStatus.failed else None
            change_model_server_status(session, server, status, reason)
            log.info("model server %s is %s", server.name, status.value)
        session.commit()
    if lost:
        service.apply()

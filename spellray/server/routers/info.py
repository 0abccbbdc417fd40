"""Server facts: health, identity, machine types."""

from __future__ import annotations

from fastapi import APIRouter, Request

from spellray import __version__
from spellray.schemas import ServerInfo
from spellray.server.auth import Scope, scoped

router = APIRouter(prefix="/api", tags=["server"])


@router.get("/info", response_model=ServerInfo)
@scoped(Scope.authenticated)
def info(request: Request) -> ServerInfo:
    ctx = request.app.state.ctx
    return ServerInfo(version=__version__, server_id=ctx.server_id, ray_address=ctx.ray.address,
                      storage_uri=ctx.storage.uri,
                      machine_types=list(ctx.machine_types.values()))

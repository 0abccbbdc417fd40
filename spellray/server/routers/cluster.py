"""HTTP route for `spell cluster status`: thin over services/cluster.py."""

from __future__ import annotations

from fastapi import APIRouter, Request

from spellray.schemas import ClusterStatus
from spellray.server.ray_capacity import capacity_of
from spellray.server.services.cluster import ClusterService

router = APIRouter(prefix="/api/cluster", tags=["cluster"])


@router.get("", response_model=ClusterStatus)
def cluster_status(request: Request) -> ClusterStatus:
    ctx = request.app.state.ctx
    return ClusterService(ctx).status_now(capacity_of(request.app.state, ctx.settings))

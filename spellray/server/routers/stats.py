"""HTTP routes for a run's hardware stats (thin; services/stats.py does the work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from spellray.schemas import StatsChunk
from spellray.schemas.base import DbId
from spellray.server.auth import Scope, scoped
from spellray.server.services.stats import MAX_WAIT, StatsService

router = APIRouter(prefix="/api", tags=["stats"])


def service(request: Request) -> StatsService:
    return StatsService(request.app.state.ctx)


Service = Annotated[StatsService, Depends(service)]


@router.get("/runs/{run_id}/stats", response_model=StatsChunk)
@scoped(Scope.runs_read)
def get_stats(run_id: DbId, stats: Service, offset: Annotated[int, Query(ge=0)] = 0,
              wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0) -> StatsChunk:
    return stats.chunk(run_id, offset, wait)

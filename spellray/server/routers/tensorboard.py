"""HTTP routes for TensorBoard (thin; services/tensorboard.py does the work). TensorBoard
itself is served under /tensorboard/<set> by server/tensorboard/gate.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import TensorBoard, TensorBoardRequest
from spellray.server.auth import Caller
from spellray.server.services.tensorboard import TensorBoardService

router = APIRouter(prefix="/api", tags=["tensorboard"])


def service(request: Request) -> TensorBoardService:
    state = request.app.state
    return TensorBoardService(state.ctx, state.tensorboards, state.browser_sessions)


Service = Annotated[TensorBoardService, Depends(service)]


# Users only (no @scoped): a TensorBoard shows its runs' files (a member: their owners').
@router.post("/tensorboards", response_model=TensorBoard)
def open_tensorboard(body: TensorBoardRequest, tensorboards: Service,
                     caller: Caller) -> TensorBoard:
    return tensorboards.open(body, caller)


@router.get("/tensorboards", response_model=list[TensorBoard])
def list_tensorboards(tensorboards: Service, caller: Caller) -> list[TensorBoard]:
    return tensorboards.list(caller.owners)

"""HTTP routes for code packages: thin, everything happens in services/code.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from spellray.server.auth import Scope, scoped
from spellray.server.services.code import CodeService

router = APIRouter(prefix="/api/code", tags=["code"])


def service(request: Request) -> CodeService:
    return CodeService(request.app.state.ctx)


Service = Annotated[CodeService, Depends(service)]


@router.head("/{sha256}")
@scoped(Scope.runs_create)
def has_code(sha256: str, code: Service) -> Response:
    code.check_uploaded(sha256)
    return Response(status_code=200)


@router.put("/{sha256}", status_code=201)
@scoped(Scope.runs_create)
async def put_code(sha256: str, request: Request, code: Service) -> dict[str, str]:
    code.save(sha256, await request.body())
    return {"sha256": sha256}

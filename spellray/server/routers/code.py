"""Content-addressed code packages: upload once, by sha256."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response

from spellray.errors import InvalidInput, NotFound
from spellray.server.services.run_preparation import code_path

router = APIRouter(prefix="/api/code", tags=["code"])


def _checked(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256 hex digest")
    return sha256


@router.head("/{sha256}")
def has_code(sha256: str, request: Request) -> Response:
    if not request.app.state.ctx.storage.exists(code_path(_checked(sha256))):
        raise NotFound(f"code package {sha256[:12]} is not uploaded")
    return Response(status_code=200)


@router.put("/{sha256}", status_code=201)
async def put_code(sha256: str, request: Request) -> dict[str, str]:
    data = await request.body()
    if hashlib.sha256(data).hexdigest() != _checked(sha256):
        raise InvalidInput("the uploaded code does not match its sha256; upload it again")
    request.app.state.ctx.storage.write_bytes(code_path(sha256), data)
    return {"sha256": sha256}

"""HTTP routes for the storage tree: thin, everything happens in services/resources.py.
Paths travel as query parameters, so a path with odd characters never becomes a route."""

from __future__ import annotations

import zlib
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from spellray.errors import InvalidInput
from spellray.schemas import ResourceList
from spellray.server.auth import Scope, current_principal, scoped
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.resources import CHUNK, ResourceService

router = APIRouter(prefix="/api/resources", tags=["resources"])


def service(request: Request) -> ResourceService:
    caller = current_principal(request)  # set by auth before any route's dependency
    return ResourceService(request.app.state.ctx, caller.owners, caller.owner or FIRST_ADMIN)


Service = Annotated[ResourceService, Depends(service)]


@router.get("", response_model=ResourceList)
@scoped(Scope.resources_read)
def ls(resources: Service, path: str = "") -> ResourceList:
    return resources.ls(path)


@router.get("/tree", response_model=ResourceList)
@scoped(Scope.resources_read)
def tree(resources: Service, path: str) -> ResourceList:
    return resources.tree(path)


# The file's bytes, not JSON: said so in the OpenAPI schema.
@router.get("/content", response_class=StreamingResponse, responses={200: {"content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
@scoped(Scope.resources_read)
def download(resources: Service, path: str) -> StreamingResponse:
    size, chunks = resources.download(path)
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"Content-Length": str(size)})


@router.delete("")
def rm(resources: Service, path: str) -> dict[str, str]:
    return {"removed": resources.rm(path)}


@router.post("/uploads/begin")
def begin_upload(resources: Service, name: str) -> dict[str, bool]:
    return {"resuming": resources.begin_upload(name)}


@router.put("/uploads/content", status_code=201)
async def upload_content(request: Request, resources: Service, name: str,
                         path: str = "") -> dict[str, int]:
    gzipped = request.headers.get("content-encoding", "") == "gzip"
    inflate = zlib.decompressobj(wbits=31) if gzipped else None
    # Storage calls block (opening, writing, and on S3 the upload itself at the end): each
    # runs in a worker thread, the body batched into ~1 MiB pieces, so the event loop keeps
    # serving other requests.
    upload = await to_thread.run_sync(resources.open_upload, name, path)
    out = await to_thread.run_sync(upload.__enter__)
    written = 0
    try:
        pending = bytearray()
        async for chunk in request.stream():
            try:
                pending += inflate.decompress(chunk) if inflate else chunk
            except zlib.error as exc:
                raise InvalidInput(f"the gzip upload body is corrupt: {exc}") from exc
            if len(pending) >= CHUNK:
                await to_thread.run_sync(out.write, bytes(pending))
                written += len(pending)
                pending.clear()
        if inflate:
            pending += inflate.flush()
        if pending:
            await to_thread.run_sync(out.write, bytes(pending))
            written += len(pending)
    except BaseException as exc:
        await to_thread.run_sync(upload.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await to_thread.run_sync(upload.__exit__, None, None, None)
    return {"bytes": written}


@router.post("/uploads/finish")
def finish_upload(resources: Service, name: str) -> dict[str, str]:
    resources.finish_upload(name)
    return {"name": name}

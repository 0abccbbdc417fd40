"""HTTP routes for links (`spell link` / `spell unlink`): thin over services/links.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import Link
from spellray.server.auth import Caller, Scope, scoped
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.links import LinkService

router = APIRouter(prefix="/api/links", tags=["links"])


def service(request: Request) -> LinkService:
    return LinkService(request.app.state.ctx)


Service = Annotated[LinkService, Depends(service)]


@router.get("", response_model=list[Link])
@scoped(Scope.resources_read)
def list_links(links: Service, caller: Caller) -> list[Link]:
    return links.list(caller.owners)


@router.get("/{alias}", response_model=Link)
@scoped(Scope.resources_read)
def get_link(alias: str, links: Service) -> Link:
    return links.get(alias)


@router.put("/{alias}", response_model=Link, status_code=201)
def create_link(alias: str, body: Link, links: Service, caller: Caller) -> Link:
    return links.create(alias, body.path, caller.owner or FIRST_ADMIN)


@router.delete("/{alias}", status_code=204)
def delete_link(alias: str, links: Service) -> None:
    links.delete(alias)

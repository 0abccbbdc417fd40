"""HTTP routes for users' public SSH keys: thin over services/keys.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from spellray.schemas import SshKey, SshKeyAdded, SshKeyRequest
from spellray.server.auth import Principal, current_principal
from spellray.server.services.keys import KeyService

router = APIRouter(prefix="/api/keys", tags=["keys"])


def service(request: Request) -> KeyService:
    return KeyService(request.app.state.ctx)


Service = Annotated[KeyService, Depends(service)]
Caller = Annotated[Principal, Depends(current_principal)]


@router.post("", response_model=SshKeyAdded, status_code=201)
def add_key(body: SshKeyRequest, keys: Service, caller: Caller) -> SshKeyAdded:
    return keys.add(caller, body)


@router.get("", response_model=list[SshKey])
def list_keys(keys: Service, caller: Caller) -> list[SshKey]:
    """The caller's keys; an admin gets everyone's."""
    return keys.list(caller)


@router.delete("/{title}", status_code=204)
def remove_key(title: str, keys: Service, caller: Caller,
               user: Annotated[str | None, Query(max_length=63)] = None) -> None:
    """The caller's key; an admin removes another user's with ``?user=NAME``."""
    keys.remove(caller, title, user)

"""HTTP routes for access tokens: thin over services/access_tokens.py. Each acts on the
calling user's own tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import AccessToken, AccessTokenCreated, AccessTokenRequest
from spellray.server.auth import Principal, current_principal
from spellray.server.services.access_tokens import AccessTokenService

router = APIRouter(prefix="/api/access-tokens", tags=["access-tokens"])


def service(request: Request) -> AccessTokenService:
    return AccessTokenService(request.app.state.ctx)


Service = Annotated[AccessTokenService, Depends(service)]
Caller = Annotated[Principal, Depends(current_principal)]


@router.post("", response_model=AccessTokenCreated, status_code=201)
def create_access_token(body: AccessTokenRequest, tokens: Service,
                        caller: Caller) -> AccessTokenCreated:
    return tokens.create(caller, body)


@router.get("", response_model=list[AccessToken])
def list_access_tokens(tokens: Service, caller: Caller) -> list[AccessToken]:
    return tokens.list(caller)


@router.delete("/{name}", status_code=204)
def delete_access_token(name: str, tokens: Service, caller: Caller) -> None:
    tokens.delete(caller, name)

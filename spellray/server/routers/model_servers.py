"""HTTP routes for model servers: thin, everything happens in services/model_servers.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import ModelServer, ModelServerLogs, ModelServerRequest, ModelServerUpdate
from spellray.server.auth import Caller
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.model_servers import ModelServerService

router = APIRouter(prefix="/api/model-servers", tags=["model-servers"])


def service(request: Request) -> ModelServerService:
    return ModelServerService(request.app.state.ctx)


Service = Annotated[ModelServerService, Depends(service)]


@router.post("", response_model=ModelServer, status_code=201)
def create_server(body: ModelServerRequest, servers: Service, caller: Caller) -> ModelServer:
    return servers.create(body, caller.owner or FIRST_ADMIN, caller.owners)


@router.get("", response_model=list[ModelServer])
def list_servers(servers: Service, caller: Caller) -> list[ModelServer]:
    return servers.list(caller.owners)


@router.get("/{name}", response_model=ModelServer)
def describe_server(name: str, servers: Service) -> ModelServer:
    return servers.describe(name)


@router.patch("/{name}", response_model=ModelServer)
def update_server(name: str, body: ModelServerUpdate, servers: Service) -> ModelServer:
    return servers.update(name, body)


@router.post("/{name}/start", response_model=ModelServer)
def start_server(name: str, servers: Service) -> ModelServer:
    return servers.start(name)


@router.post("/{name}/stop", response_model=ModelServer)
def stop_server(name: str, servers: Service) -> ModelServer:
    return servers.stop(name)


@router.delete("/{name}", status_code=204)
def delete_server(name: str, servers: Service) -> None:
    servers.delete(name)


@router.get("/{name}/logs", response_model=ModelServerLogs)
def get_logs(name: str, servers: Service) -> ModelServerLogs:
    return ModelServerLogs(text=servers.logs(name))

"""HTTP routes for models: thin, everything happens in services/models.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import Model, ModelRequest
from spellray.server.auth import Caller, Scope, scoped
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.models import ModelService

router = APIRouter(prefix="/api/models", tags=["models"])


def service(request: Request) -> ModelService:
    return ModelService(request.app.state.ctx)


Service = Annotated[ModelService, Depends(service)]


@router.post("", response_model=Model, status_code=201)
def create_model(body: ModelRequest, models: Service, caller: Caller) -> Model:
    return models.create(body, caller.owner or FIRST_ADMIN, caller.owners)


@router.get("", response_model=list[Model])
@scoped(Scope.resources_read)
def list_models(models: Service, caller: Caller) -> list[Model]:
    return models.list(caller.owners)


@router.get("/{name}", response_model=list[Model])
@scoped(Scope.resources_read)
def model_versions(name: str, models: Service) -> list[Model]:
    return models.versions(name)


@router.get("/{name}/{version}", response_model=Model)
@scoped(Scope.resources_read)
def get_model(name: str, version: str, models: Service) -> Model:
    return models.get(f"{name}:{version}")


@router.delete("/{name}/{version}", response_model=Model)
def delete_model(name: str, version: str, models: Service) -> Model:
    return models.delete(f"{name}:{version}")

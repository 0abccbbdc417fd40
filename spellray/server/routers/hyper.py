"""HTTP routes for hyperparameter searches: thin, everything happens in services/hyper.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from spellray.schemas import HyperList, HyperRequest, HyperSearch, HyperStatusReport, TrialStart
from spellray.schemas.base import DbId
from spellray.server.auth import Caller, Scope, scoped
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.hyper import HyperService

router = APIRouter(prefix="/api/hyper", tags=["hyper"])


def service(request: Request) -> HyperService:
    return HyperService(request.app.state.ctx)


Service = Annotated[HyperService, Depends(service)]


@router.post("", response_model=HyperSearch, status_code=201)
def create_search(body: HyperRequest, hyper: Service, caller: Caller) -> HyperSearch:
    return hyper.create(body, caller.owner or FIRST_ADMIN)


@router.get("", response_model=HyperList)
def list_searches(hyper: Service, caller: Caller, archived: bool = False) -> HyperList:
    return hyper.list(archived, caller.owners)


@router.get("/{search_id}", response_model=HyperSearch)
@scoped(Scope.search_drive)
def get_search(search_id: DbId, hyper: Service) -> HyperSearch:
    return hyper.get(search_id)


@router.get("/{search_id}/spec")
@scoped(Scope.search_drive)
def get_spec(search_id: DbId, hyper: Service) -> dict:
    return hyper.spec(search_id)


@router.post("/{search_id}/trials", status_code=201)
@scoped(Scope.search_drive)
def start_trial(search_id: DbId, body: TrialStart, hyper: Service) -> dict:
    return hyper.start_trial(search_id, body.params)


@router.post("/{search_id}/status", response_model=HyperSearch)
@scoped(Scope.search_drive)
def report_status(search_id: DbId, body: HyperStatusReport, hyper: Service) -> HyperSearch:
    return hyper.report(search_id, body)


@router.post("/{search_id}/stop", response_model=HyperSearch)
def stop_search(search_id: DbId, hyper: Service) -> HyperSearch:
    return hyper.stop(search_id)


@router.post("/{search_id}/kill", response_model=HyperSearch)
def kill_search(search_id: DbId, hyper: Service) -> HyperSearch:
    return hyper.kill(search_id)


@router.post("/{search_id}/archive", response_model=HyperSearch)
def archive_search(search_id: DbId, hyper: Service) -> HyperSearch:
    return hyper.archive(search_id)


@router.get("/{search_id}/metrics.csv", response_class=PlainTextResponse)
def download_metrics(search_id: DbId, hyper: Service) -> str:
    return hyper.metrics_csv(search_id)

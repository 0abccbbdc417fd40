"""How the server answers an error: ``{"error": {"code", "message"}}`` with the error's HTTP
status, the code one of ``spellray.errors.WIRE_ERRORS``. Kept apart from the app so the wire
format is tested on its own, code by code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from spellray.errors import (
    ConcurrentChange,
    Conflict,
    Forbidden,
    InternalError,
    InvalidInput,
    NotFound,
    SpellrayError,
    Unauthorized,
)
from spellray.server.auth import authorize

log = logging.getLogger("spellray.server")

# Errors FastAPI and Starlette raise themselves (a body that is not JSON, an unknown route, a
# wrong method): the same wire shape as ours, with the wire code of their status.
_CODE_OF_STATUS = {cls.http_status: cls.code
                   for cls in (InvalidInput, Unauthorized, Forbidden, NotFound, Conflict)}


def error_response(exc: SpellrayError) -> JSONResponse:
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                        status_code=exc.http_status)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SpellrayError)
    async def _spellray_error(_: Request, exc: SpellrayError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid" and not hasattr(request.state, "principal"):
            # FastAPI parses a JSON body before it solves the app's dependency, so a body
            # that is no JSON fails before ``authorize`` ran: check the token first all the
            # same (401/403/404 before 400, as for every other bad body).
            try:
                await run_in_threadpool(authorize, request)
            except SpellrayError as refused:
                return error_response(refused)
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return error_response(InvalidInput(f"{where}: {message}" if where else message))

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = _CODE_OF_STATUS.get(exc.status_code, "error")
        message = f"{exc.detail} (HTTP {exc.status_code}): check the request against /openapi.json"
        return JSONResponse({"error": {"code": code, "message": message}},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StaleDataError)
    async def _stale(_: Request, exc: StaleDataError) -> JSONResponse:
        return error_response(ConcurrentChange("the run changed concurrently; try again"))

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # Postgres checks what SQLite lets through (a name longer than its column, say):
        # the user's input, so said as such, in the database's own first line.
        said = str(exc.orig).strip().splitlines()[0] if exc.orig else "a value does not fit"
        return error_response(InvalidInput(f"the state DB refused a value ({said}): "
                                           "shorten it or correct it"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        # One line: a multi-line exception text (SQL, say) would spill over the CLI's line.
        text = " ".join(str(exc).split())[:300]
        return error_response(InternalError(
            f"the server failed: {type(exc).__name__}: {text} "
            "(details in the server log, SPELLRAY_HOME/logs/server.log)"))

"""The API's OpenAPI schema as the server really answers: every error is ``{"error": {"code",
"message"}}`` with a 4xx or 5xx status (server/error_handlers.py), never FastAPI's default 422
body, so clients and API fuzzers (tests/security) can check answers against the schema."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "one of spellray.errors.WIRE_ERRORS"},
            "message": {"type": "string", "description": "one line: what is wrong, what to do"},
        },
    }},
}
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # bad input is a 400 here (error_handlers.py)
            responses["4XX"] = {"description": "Refused: bad input, no or wrong token, not "
                                "found, conflict", "content": _ERROR_BODY}
            responses["5XX"] = {"description": "The server, Ray or storage failed",
                                "content": _ERROR_BODY}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    return schema


def use_error_schema(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and /openapi.json) describe spellray's error answers."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_errors(get_openapi(
                title=app.title, version=app.version, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""API fuzzing: schemathesis generates requests from the real server's OpenAPI schema and
sends them over HTTP, with the admin token and with none. Every answer must be a non-5xx
that matches the schema (status, content type, headers, body), and without a token every
/api route must answer 401.

The figure, printed last: ``operations, cases, 5xx, violations, unauth_ok``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spellray.server.app import create_app
from tests.helpers import RaylessServer
from tests.security.conftest import SHORT

pytestmark = pytest.mark.campaign

# Cases per operation and generation mode (valid inputs, then invalid ones).
EXAMPLES = {GenerationMode.POSITIVE: 6 if SHORT else 40,
            GenerationMode.NEGATIVE: 3 if SHORT else 15}
UNAUTH_EXAMPLES = 2 if SHORT else 5
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# Routes a request without a token may reach, and why: the API's own description (it holds no
# data; clients and fuzzers read it) and the console's static files (CSS, scripts, vendored
# htmx). The console's pages, MLflow, TensorBoard, Jupyter and Ray's dashboard are behind
# the browser gate (server/browser_sessions.py), outside /api and tested where they live.
PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}
# /api routes that answer without a token, each with its reason (docs/security.md).
PUBLIC_API: dict[tuple[str, str], str] = {
    ("POST", "/api/login"): "logging in: it takes a one-time login token or a name and "
                            "password (docs/users.md), and answers 401 for anything else",
}


@dataclass
class Tally:
    cases: int = 0
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    ray_unavailable: int = 0
    unauth_not_401: list[str] = field(default_factory=list)


def _what(case: Any, response: Any) -> str:
    return (f"{case.method} {case.formatted_path} {case.query or ''} -> "
            f"{response.status_code} {response.text[:200]}")


def _fuzz(operation: Any, mode: GenerationMode, examples: int, headers: dict[str, str],
          session: requests.Session, tally: Tally, unauth: bool) -> None:
    # Failures are collected, not raised: one run gives the whole figure, not the first bug.
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def one(case: Any) -> None:
        response = case.call(headers=headers, session=session, timeout=60)
        tally.cases += 1
        body = response.text
        if response.status_code == 503 and '"ray_unavailable"' in body:
            tally.ray_unavailable += 1  # no Ray behind this server, on purpose (conftest.py)
            return
        if response.status_code >= 500:
            tally.server_errors.append(_what(case, response))
        if unauth and response.status_code != 401:
            tally.unauth_not_401.append(_what(case, response))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            tally.violations += [f"{_what(case, response)}: {failure.title}"
                                 for failure in group.exceptions
                                 if not isinstance(failure, ServerError)]  # counted above
    try:
        one()
    except Unsatisfiable:
        # An operation with no input (GET /api/info) has no invalid request to make.
        assert mode == GenerationMode.NEGATIVE, operation.label


def _api_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the app, from its routes; fails on an unexplained public one."""
    app = create_app("http://127.0.0.1:1")
    routes, outside = [], set()
    for route in iter_route_contexts(app.routes):
        if route.path.startswith("/api/"):
            routes += [(method, route.path) for method in sorted(route.methods or ())
                       if (method, route.path) not in PUBLIC_API]
        else:
            outside.add(route.path)
    assert outside == PUBLIC, f"a route outside /api that nobody declared public: {outside}"
    return routes


def _unauth_answers(url: str, token: str) -> tuple[int, list[str]]:
    """Each /api route, called with no token and with a wrong one: how many answered 401."""
    ok, wrong = 0, []
    routes = _api_routes()
    with httpx.Client(base_url=url, timeout=60) as client:
        for (method, path), auth in itertools.product(routes, (None, f"Bearer x{token}")):
            filled = (path.replace("{run_id}", "1").replace("{search_id}", "1")
                      .replace("{workflow_id}", "1").replace("{sha256}", "0" * 64)
                      .replace("{", "").replace("}", ""))
            headers = {"Authorization": auth} if auth else {}
            response = client.request(method, filled, headers=headers, json={})
            code = "unauthorized" if method == "HEAD" else response.json()["error"]["code"]
            if response.status_code == 401 and code == "unauthorized":  # HEAD: no body
                ok += 1
            else:
                wrong.append(f"{method} {filled} ({auth and 'wrong token'}): "
                             f"{response.status_code} {response.text[:100]}")
    assert len(routes) > 50  # the enumeration found the app's routes, not an empty list
    return ok, wrong


def test_the_api_answers_every_fuzzed_request_by_its_schema(fuzz_server: RaylessServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    tally = Tally()
    admin = {"Authorization": f"Bearer {fuzz_server.token}"}
    with requests.Session() as session:
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                _fuzz(operation, mode, examples, admin, session, tally, unauth=False)
            if (operation.method.upper(), operation.path) not in PUBLIC_API:
                _fuzz(operation, GenerationMode.POSITIVE, UNAUTH_EXAMPLES, {}, session, tally,
                      unauth=True)
    unauth_ok, unauth_wrong = _unauth_answers(fuzz_server.url, fuzz_server.token)
    tally.unauth_not_401 += unauth_wrong
    print(f"\nray_unavailable answers (503, no Ray behind this server): {tally.ray_unavailable}")
    for line in [*tally.server_errors, *tally.violations, *tally.unauth_not_401][:30]:
        print(line)
    print(f"API fuzzing: operations={len(operations)}, cases={tally.cases}, "
          f"5xx={len(tally.server_errors)}, violations={len(tally.violations)}, "
          f"unauth_ok={unauth_ok}/{unauth_ok + len(unauth_wrong)}")
    assert not tally.server_errors, tally.server_errors[:5]
    assert not tally.violations, tally.violations[:5]
    assert not tally.unauth_not_401, tally.unauth_not_401[:5]

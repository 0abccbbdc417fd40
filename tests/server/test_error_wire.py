"""The wire error format, code by code: what the server's handlers send is what the SDK
raises, for every code in the table, for an unexpected failure, and never a client-only class."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm.exc import StaleDataError

import spellray.client.model_servers  # noqa: F401  (its PredictionError must not capture a code)
from spellray.client._http import error_from_response as _error_from
from spellray.errors import (
    WIRE_ERRORS,
    ConcurrentChange,
    InternalError,
    InvalidInput,
    NotFound,
    SpellrayError,
    error_for_code,
)
from spellray.server import db
from spellray.server.error_handlers import add_error_handlers
from tests.postgres import Postgres


def _subclasses(cls: type[SpellrayError]) -> list[type[SpellrayError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


@pytest.fixture(scope="module")
def http() -> TestClient:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/raise/{code}")
    def raise_code(code: str) -> None:
        raise WIRE_ERRORS[code](f"a {code} happened")

    @app.get("/bug")
    def bug() -> None:
        raise TypeError("an argument is missing\n  and this was the second line")

    @app.get("/stale")
    def stale() -> None:
        raise StaleDataError("UPDATE matched 0 rows")

    @app.get("/number/{n}")
    def number(n: int) -> int:
        return n

    @app.post("/echo")
    def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("code", sorted(WIRE_ERRORS))
def test_every_wire_code_comes_back_as_its_own_class(http: TestClient, code: str) -> None:
    response = http.get(f"/raise/{code}")
    cls = WIRE_ERRORS[code]
    assert response.status_code == cls.http_status
    raised = _error_from(response)
    assert type(raised) is cls
    assert raised.code == code and raised.message == f"a {code} happened"


def test_an_unexpected_failure_is_an_internal_error_in_one_line(http: TestClient) -> None:
    response = http.get("/bug")
    assert response.status_code == 500
    raised = _error_from(response)
    assert type(raised) is InternalError
    assert raised.message.startswith("the server failed: TypeError: an argument is missing")
    assert "\n" not in raised.message


def test_framework_errors_have_codes_of_their_own(http: TestClient) -> None:
    assert type(_error_from(http.get("/stale"))) is ConcurrentChange
    invalid = _error_from(http.get("/number/seven"))
    assert type(invalid) is InvalidInput and invalid.message.startswith("n: ")


def test_starlettes_own_errors_keep_the_wire_shape(http: TestClient) -> None:
    """Found by the API fuzzer (tests/security): a body that is not JSON got FastAPI's
    ``{"detail": ...}``, which the SDK could not read."""
    garbled = http.post("/echo", content=b"\xff{", headers={"content-type": "application/json"})
    assert garbled.status_code == 400
    assert type(_error_from(garbled)) is InvalidInput
    assert garbled.json()["error"]["message"].startswith("There was an error parsing the body")
    unknown = http.get("/no/such/route")
    assert unknown.status_code == 404 and type(_error_from(unknown)) is NotFound


def test_each_class_has_its_own_code_and_client_classes_capture_none() -> None:
    every = _subclasses(SpellrayError)
    codes = [cls.code for cls in every]
    assert len(codes) == len(set(codes)), codes  # no class inherits a code
    assert all("code" in vars(cls) for cls in every)
    from spellray.client.model_servers import PredictionError

    assert PredictionError not in WIRE_ERRORS.values()
    assert type(error_for_code(PredictionError.code, "x")) is SpellrayError
    assert type(error_for_code("no_such_code", "x")) is SpellrayError


def test_a_value_postgres_refuses_is_the_users_error(postgres: Postgres,
                                                      postgres_template: str) -> None:
    """SQLite keeps a name longer than its column; Postgres refuses it: a 400 in one line."""
    url = postgres.database(template=postgres_template)
    engine = db.make_engine(url)
    app = FastAPI()
    add_error_handlers(app)

    @app.post("/links/{alias}")
    def link(alias: str) -> None:
        with db.make_session_factory(engine)() as session:
            session.add(db.Link(alias=alias, path="uploads/x"))
            session.commit()

    try:
        http = TestClient(app, raise_server_exceptions=False)
        assert http.post("/links/short").status_code == 200
        raised = _error_from(http.post(f"/links/{'a' * 201}"))
        assert type(raised) is InvalidInput and "\n" not in raised.message
        assert "value too long for type character varying(200)" in raised.message
    finally:
        engine.dispose()
        postgres.drop(url)

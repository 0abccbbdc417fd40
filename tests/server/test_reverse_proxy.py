"""The reverse proxy behind the browser gate: a real ASGI server (uvicorn) over a real socket,
relaying websockets to a tiny real websocket backend (websockets' own server) and HTTP to a
tiny real HTTP backend (Starlette on uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Scope
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as connect_sync

from spellray.server import db
from spellray.server.auth import ensure_admin_token
from spellray.server.browser_sessions import BrowserGate, BrowserPath, BrowserSessions
from spellray.server.reverse_proxy import ReverseProxy
from tests.helpers import free_port, wait_for


async def _echo(connection: ServerConnection) -> None:
    """Answers each message with what it saw: its type, content and the request's cookie."""
    async for message in connection:
        cookie = connection.request.headers.get("cookie", "") if connection.request else ""
        if isinstance(message, bytes):
            await connection.send(message[::-1])
        else:
            await connection.send(f"echo {message} cookie={cookie!r}")


def _in_thread(main: Any) -> threading.Thread:
    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    port = free_port()
    stop = threading.Event()

    async def main() -> None:
        async with serve(_echo, "127.0.0.1", port, subprotocols=["echo.v1"]):
            while not stop.is_set():
                await asyncio.sleep(0.1)

    _in_thread(lambda: asyncio.run(main()))
    yield f"http://127.0.0.1:{port}"
    stop.set()


async def _seen(request: Request) -> JSONResponse:
    body = b"".join([chunk async for chunk in request.stream()])
    return JSONResponse({"path": request.url.path, "query": request.url.query,
                         "length": len(body), "tail": body[-7:].decode(),
                         "authorization": request.headers.get("authorization"),
                         "cookie": request.headers.get("cookie")})


def _serve(app: ASGIApp) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = _in_thread(server.run)
    wait_for(lambda: server.started, what="uvicorn")
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def http_backend() -> Iterator[str]:
    app = Starlette(routes=[
        Route("/echo/seen", _seen, methods=["GET", "POST"]),
        Route("/echo/moved", lambda _: RedirectResponse("/echo/seen", status_code=302))])
    server, thread, url = _serve(app)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def gate(backend: str, http_backend: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A server whose /echo is gated like /tensorboard and relayed to the backends."""
    async def to_backend(scope: Scope, state: Any) -> ASGIApp:
        target = backend if scope["type"] == "websocket" else http_backend
        return partial(state.reverse_proxy, backend=target)

    path = BrowserPath(prefix="/echo", backend=to_backend, command="spell echo",
                       refused="log in first")
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await app.state.reverse_proxy.aclose()

    app = Starlette(middleware=[Middleware(BrowserGate, paths=[path])], lifespan=lifespan)
    app.state.browser_sessions = BrowserSessions()
    app.state.reverse_proxy = ReverseProxy()
    # The real token store (a migrated SQLite DB with the admin token), for Bearer requests.
    home = tmp_path_factory.mktemp("gate")
    url = f"sqlite:///{home / 'state.db'}"
    db.migrate(url)
    sessions = db.make_session_factory(db.make_engine(url))
    with sessions() as session:
        ensure_admin_token(session, home / "token")
    app.state.ctx = SimpleNamespace(sessions=sessions)
    server, thread, url = _serve(app)
    code = app.state.browser_sessions.issue_code("/echo/")
    login = httpx.get(f"{url}/echo/login?code={code}")
    assert login.status_code == 303
    yield url, login.cookies["spellray_ui"], (home / "token").read_text().strip()
    server.should_exit = True
    thread.join(timeout=10)


def test_a_websocket_round_trip_through_the_proxy(gate: tuple[str, str, str]) -> None:
    url, session, _ = gate
    ws_url = "ws" + url.removeprefix("http") + "/echo/socket?x=1"
    headers = {"Cookie": f"spellray_ui={session}; theirs=kept"}

    async def talk() -> tuple[str | None, list[str | bytes]]:
        async with connect(ws_url, additional_headers=headers,
                           subprotocols=["echo.v1"]) as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01\x02")
            data = await ws.recv()
            return ws.subprotocol, [text, data]

    subprotocol, answers = asyncio.run(talk())
    assert subprotocol == "echo.v1"  # negotiated with the backend, end to end
    # The backend sees the browser's own cookies, never spellray's session.
    assert answers == ["echo hello cookie='theirs=kept'", b"\x02\x01\x00"]


def test_a_websocket_without_a_session_is_refused(gate: tuple[str, str, str]) -> None:
    url, _, _ = gate
    ws_url = "ws" + url.removeprefix("http") + "/echo/socket"
    for headers in ({}, {"Cookie": "spellray_ui=nope"}):
        with pytest.raises(InvalidStatus) as refused:
            connect_sync(ws_url, additional_headers=headers)
        assert refused.value.response.status_code == 403


def test_http_through_the_proxy(gate: tuple[str, str, str]) -> None:
    url, session, token = gate
    cookies = {"spellray_ui": session}
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as browser:
        # A streamed upload arrives whole; path and query as sent (still escaped).
        chunks = [b"x" * 65536 for _ in range(30)] + [b"the end"]
        seen = browser.post("/echo/seen?a=1&b=%2F", content=iter(chunks),
                            headers={"Authorization": f"Bearer {token}"}).json()
        assert seen["length"] == 30 * 65536 + 7 and seen["tail"] == "the end"
        assert seen["path"] == "/echo/seen" and seen["query"] == "a=1&b=%2F"
        # Spellray's credentials stay here.
        assert seen["authorization"] is None and seen["cookie"] is None
        # Redirects go back to the browser, which follows them through the proxy.
        moved = browser.get("/echo/moved", follow_redirects=False)
        assert moved.status_code == 302 and moved.headers["location"] == "/echo/seen"
    for headers in ({}, {"Authorization": "Bearer nope"}):
        refused = httpx.get(f"{url}/echo/seen", headers=headers, timeout=30)
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "log in first"

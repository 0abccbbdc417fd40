"""The reverse proxy's websockets, behind the browser gate: a real ASGI server (uvicorn) over
a real socket, relaying to a tiny real websocket backend (websockets' own server)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Scope
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as connect_sync

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


@pytest.fixture(scope="module")
def gate(backend: str) -> Iterator[tuple[str, str]]:
    """A server whose /echo is gated like /tensorboard and relayed to the backend."""
    async def to_backend(scope: Scope, state: Any) -> ASGIApp:
        return partial(state.reverse_proxy, backend=backend)

    path = BrowserPath(prefix="/echo", backend=to_backend, command="spell echo",
                       refused="log in first")
    app = Starlette(middleware=[Middleware(BrowserGate, paths=[path])])
    app.state.browser_sessions = BrowserSessions()
    app.state.reverse_proxy = ReverseProxy()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = _in_thread(server.run)
    wait_for(lambda: server.started, what="uvicorn")
    url = f"http://127.0.0.1:{port}"
    code = app.state.browser_sessions.issue_code("/echo/")
    login = httpx.get(f"{url}/echo/login?code={code}")
    assert login.status_code == 303
    yield url, login.cookies["spellray_ui"]
    server.should_exit = True
    thread.join(timeout=10)


def test_a_websocket_round_trip_through_the_proxy(gate: tuple[str, str]) -> None:
    url, session = gate
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


def test_a_websocket_without_a_session_is_refused(gate: tuple[str, str]) -> None:
    url, _ = gate
    ws_url = "ws" + url.removeprefix("http") + "/echo/socket"
    for headers in ({}, {"Cookie": "spellray_ui=nope"}):
        with pytest.raises(InvalidStatus) as refused:
            connect_sync(ws_url, additional_headers=headers)
        assert refused.value.response.status_code == 403

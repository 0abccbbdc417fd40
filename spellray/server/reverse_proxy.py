"""Reverse-proxying HTTP and websockets from the server to a backend on a node (TensorBoard,
Jupyter workspaces, later Ray's dashboard), as plain ASGI: what reaches here was let in by the
browser gate (browser_sessions.py), so the proxy only relays.

Bodies are streamed both ways and never held whole: a large download or a slow event stream
costs no memory. The response is relayed raw (still compressed, with its own Content-Length),
so the proxy does no work per byte beyond copying. Spellray's own credentials (the
Authorization header, the session cookie) never reach the backend.

HTTP goes through aiohttp's client rather than httpx's: backends such as TensorBoard (Werkzeug)
close the connection after every answer, so each request opens a new one, and there
aiohttp answered 3-5x sooner than httpx's async client on this machine (~1 ms against
~5 ms a request), which decided whether a proxied TensorBoard page loads within 1.2x of a
direct one (benchmarks/tensorboard_proxy.py). Websockets go through ``websockets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from yarl import URL

from spellray.errors import ServerUnavailable
from spellray.server.browser_sessions import COOKIE, WS_POLICY_VIOLATION, refuse

log = logging.getLogger(__name__)

# Per-connection headers (RFC 9110 7.6.1) and what the proxy sets itself.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate",
                        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding",
                        b"upgrade", b"host"})
# Websocket handshake headers the client library makes itself.
WS_HANDSHAKE = frozenset({b"sec-websocket-key", b"sec-websocket-version",
                          b"sec-websocket-extensions", b"sec-websocket-protocol"})
WS_INTERNAL_ERROR = 1011
Headers = Sequence[tuple[bytes, bytes]]


class ReverseProxy:
    """One per server: a pooled HTTP client shared by every proxied request."""

    def __init__(self) -> None:
        self._client: aiohttp.ClientSession | None = None

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._client is None:  # made in the server's event loop, on first use
            self._client = aiohttp.ClientSession(
                # No total timeout: a backend may stream for long (event streams, downloads).
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(limit=200),
                auto_decompress=False,  # relayed as the backend compressed it
                cookie_jar=aiohttp.DummyCookieJar(),  # the browser keeps cookies, not us
                trust_env=False)  # backends are on the cluster, never behind a proxy
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, backend: str,
                       unavailable: str = "", upstream_headers: Headers = (),
                       strip: str = "") -> None:
        """Relay one request to ``backend`` (``http://host:port``), path and query as sent;
        ``unavailable``: what to say when the backend does not answer; ``upstream_headers``:
        the backend's own credentials (Jupyter's token), which the browser never sees;
        ``strip``: a prefix the backend does not know (Ray's dashboard is served at its root
        and links relatively, so it works under /ray/ with the prefix taken off)."""
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send, backend, upstream_headers)
        else:
            await self.http(scope, receive, send, backend, unavailable, upstream_headers, strip)

    async def http(self, scope: Scope, receive: Receive, send: Send, backend: str,
                   unavailable: str = "", upstream_headers: Headers = (),
                   strip: str = "") -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in [*forwarded_headers(scope), *upstream_headers]]
        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        try:
            response = await self.client.request(
                scope["method"], URL(backend + target(scope, strip), encoded=True),
                headers=headers, data=request_body(receive) if has_body else None,
                allow_redirects=False,  # the browser follows them, through us
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"))
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            await refuse(scope, send, ServerUnavailable(
                unavailable or f"the backend at {backend} does not answer "
                f"({type(exc).__name__}); it may have stopped: open it again"))
            return
        try:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(k, v) for k, v in response.raw_headers
                                    if k.lower() not in HOP_BY_HOP]})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release()

    async def websocket(self, scope: Scope, receive: Receive, send: Send,
                        backend: str, upstream_headers: Headers = ()) -> None:
        opening = await receive()
        if opening["type"] != "websocket.connect":
            return
        url = "ws" + backend.removeprefix("http") + target(scope)
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in [*forwarded_headers(scope), *upstream_headers]
                   if k.lower() not in WS_HANDSHAKE]
        try:
            upstream = await connect(url, additional_headers=headers, max_size=None,
                                     subprotocols=scope.get("subprotocols") or None,
                                     open_timeout=10, compression=None, proxy=None,
                                     user_agent_header=None)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.info("websocket to %s refused: %s", url, exc)
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            to_backend = asyncio.create_task(_browser_to_backend(receive, upstream))
            to_browser = asyncio.create_task(_backend_to_browser(upstream, send))
            done, pending = await asyncio.wait({to_backend, to_browser},
                                               return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
            for task in done:
                if exc := task.exception():
                    log.info("websocket to %s ended: %s", url, exc)


async def _browser_to_backend(receive: Receive, upstream: ClientConnection) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close(message.get("code", 1000))
            return
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _backend_to_browser(upstream: ClientConnection, send: Send) -> None:
    try:
        async for data in upstream:
            key = "text" if isinstance(data, str) else "bytes"
            await send({"type": "websocket.send", key: data})
        code = upstream.close_code or 1000
    except ConnectionClosed:
        code = upstream.close_code or WS_INTERNAL_ERROR
    await send({"type": "websocket.close", "code": code})


def target(scope: Scope, strip: str = "") -> str:
    """The request's path and query exactly as the browser sent them (still escaped), less
    ``strip`` at its start."""
    path = scope.get("raw_path") or scope["path"].encode()
    if strip and path.startswith(strip.encode()):
        path = path[len(strip):] or b"/"
    query = scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def forwarded_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's headers for the backend: without hop-by-hop ones and without spellray's
    credentials; with X-Forwarded-* saying where the browser really went."""
    headers: list[tuple[bytes, bytes]] = []
    host = b""
    for key, value in scope["headers"]:
        name = key.lower()
        if name == b"host":
            host = value
        if name in HOP_BY_HOP or name == b"authorization":
            continue
        if name == b"cookie":
            value = _without_session(value)
            if not value:
                continue
        headers.append((name, value))
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", client[0].encode()))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers


def _without_session(cookie: bytes) -> bytes:
    kept = [part.strip() for part in cookie.split(b";")
            if part.strip() and not part.strip().startswith(COOKIE.encode() + b"=")]
    return b"; ".join(kept)


async def request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # the browser went away
        if body := message.get("body"):
            yield body
        if not message.get("more_body"):
            return

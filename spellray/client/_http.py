"""The SDK's one HTTP base: a session to the server (``Api``) and the class every resource
group extends. Resource modules import this and nothing else of the client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import ValidationError

from spellray.errors import (
    InvalidInput,
    NotFound,
    ServerUnavailable,
    SpellrayError,
    Unauthorized,
    error_for_code,
)

# The active owner (`spell owner NAME`), sent with every request; the server checks the
# user may use it and makes what the request creates that owner's (server/auth.py).
OWNER_HEADER = "X-Spellray-Owner"


class Api:
    """One HTTP session to a spellray server: its URL, the bearer token, and the wire errors
    turned back into spellray's exceptions."""

    def __init__(self, url: str, token: str, timeout: float = 60.0,
                 owner: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        # No token (logging in): no header, rather than an empty one that httpx refuses.
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if owner:  # `spell owner NAME`: what this client makes is that owner's
            headers[OWNER_HEADER] = owner
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnavailable:
        return ServerUnavailable(
            f"the spellray server at {self.url} is not answering ({exc.__class__.__name__});"
            " start it with: spell server start"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        if method == "HEAD" or not response.content:
            return None
        return response.json()

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A request whose answer is read in pieces (file downloads), with the same errors."""
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc


def error_from_response(response: httpx.Response) -> SpellrayError:
    try:
        error = response.json()["error"]
        return error_for_code(error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        if response.status_code == 401:
            return Unauthorized("the server refused the token")
        if response.status_code == 404:  # HEAD answers carry no body
            return NotFound(f"{response.request.url.path} was not found on the server")
        return SpellrayError(f"the server answered {response.status_code}: {response.text[:200]}")


class ResourceGroup:
    """One resource's calls (``client.runs``, ``client.models``, ...) over the shared session."""

    def __init__(self, api: Api) -> None:
        self._api = api


def invalid_input(exc: ValidationError) -> InvalidInput:
    """pydantic's first complaint as one line, the same message the server would give."""
    return InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, "))


def checked(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Build a request model; a bad value is InvalidInput in pydantic's words (one line)."""
    try:
        return fn(*args, **kwargs)
    except ValidationError as exc:
        raise invalid_input(exc) from exc

"""How the runner speaks to the server: JSON over the standard library's http.client, with
the run's token, and an outbox that delivers in the background, retried while the server is
down, so the run never waits on the server.

Hand-written over http.client rather than httpx on purpose: the runner starts inside every
run, and importing httpx (with httpcore, and trio where installed) costs ~250 ms there, more
than everything else the runner does for a short run.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


class ServerApi:
    """The run's own part of the API (``/api/runs/<id>``). One connection, kept alive; not
    shared between threads (each user makes its own)."""

    def __init__(self, server_url: str, token: str, run_id: int) -> None:
        self._args = (server_url, token, run_id)
        self.server_url = server_url
        url = urlsplit(server_url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port
        self.run_path = f"{url.path.rstrip('/')}/api/runs/{run_id}"
        self._headers = {"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"}
        self._connection: http.client.HTTPConnection | None = None

    def copy(self) -> ServerApi:
        """The same API on a connection of its own, for another thread."""
        return ServerApi(*self._args)

    def request(self, method: str, path: str, body: Any = None,
                timeout: float = 5) -> tuple[int, bytes]:
        """(status, body) of ``method`` on ``run_path + path``; OSError or HTTPException if
        the server does not answer (the connection is then dropped, made anew next time)."""
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=timeout)
        payload = json.dumps(body) if body is not None else None
        try:
            self._connection.request(method, self.run_path + path, body=payload,
                                     headers=self._headers)
            response = self._connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def deliver(self, path: str, body: Any, give_up_at: Callable[[], float | None],
                timeout: float = 5) -> tuple[int, bytes] | None:
        """POST until the server takes it: 2xx, or 4xx, which is final (the run already
        ended, or its token was revoked because it did). 5xx and no answer are tried again,
        backing off, until the time ``give_up_at()`` returns (None: no limit yet). Returns
        the last answer (status, body), None if there never was one."""
        delay, answer = 0.2, None
        while True:
            try:
                answer = self.request("POST", path, body, timeout)
                if answer[0] < 500:
                    return answer
            except (OSError, http.client.HTTPException):
                pass
            if (deadline := give_up_at()) is not None and time.monotonic() + delay > deadline:
                return answer
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_CLOSE = object()


class Outbox:
    """Delivers what is ``put`` to one POST path, in order, from a background thread.

    With ``batch_every`` (seconds), items are sent as ``{"metrics": [...]}`` batches of up
    to ``batch_limit``: the first item waits that long for company. ``close(timeout)``
    delivers what is queued, giving up after ``timeout`` seconds, and returns the items it
    could not deliver (the server down all that while), so the caller can keep them.
    """

    def __init__(self, api: ServerApi, path: str, batch_every: float | None = None,
                 batch_limit: int = 1000, name: str = "outbox") -> None:
        self._api = api
        self._path = path
        self._batch_every = batch_every
        self._batch_limit = batch_limit
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._undelivered: list[Any] = []
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def close(self, timeout: float) -> list[Any]:
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._queue.put(_CLOSE)
        self._thread.join(timeout + 1)
        # A thread still inside a request (a server that accepts and never answers) may yet
        # deliver its batch: only what it never took from the queue counts as undelivered.
        left = self._undelivered
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _CLOSE:
                left.append(item)
        return left

    def _loop(self) -> None:
        closed = False
        while not closed:
            item = self._queue.get()
            if item is _CLOSE:
                break
            body = item
            if self._batch_every is not None:
                self._closing.wait(self._batch_every)
                items = [item]
                while len(items) < self._batch_limit:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _CLOSE:
                        closed = True
                        break
                    items.append(more)
                body = {"metrics": items}
            answer = self._api.deliver(self._path, body, lambda: self._deadline)
            if answer is None or answer[0] >= 500:  # given up on: the server never took it
                self._undelivered.extend(body["metrics"] if self._batch_every is not None
                                         else [body])
        self._api.close()

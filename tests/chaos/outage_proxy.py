"""A TCP proxy in front of the S3 endpoint that can be taken down and brought back on the
same port: an endpoint outage that keeps the bucket's contents.

moto's server keeps its state in memory, so stopping its process and starting a new one on
the same port would come back empty (moto has no persistence for S3). The proxy is what the
clients see as the endpoint: down means the port refuses connections and every open one is
cut, as when a real endpoint's process dies.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress


class OutageProxy:
    """Forwards 127.0.0.1:port to ``target_port``. ``trigger``: bytes which, the ``nth`` time
    a client sends them, take the endpoint down for ``outage`` seconds (once)."""

    def __init__(self, target_port: int, trigger: bytes, outage: float, nth: int = 1) -> None:
        self.target_port = target_port
        self.trigger = trigger
        self.nth = nth
        self.seen = 0
        self.outage = outage
        self.down_at: float | None = None
        self.up_at: float | None = None
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept_loop, args=(self._listener,), daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the endpoint is down
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, self._watch),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None),
                             daemon=True).start()

    def _watch(self, data: bytes) -> None:
        if self.down_at is not None or self.trigger not in data:
            return
        with self._lock:
            self.seen += 1
            if self.seen < self.nth or self.down_at is not None:
                return
            self.down_at = time.time()
            threading.Thread(target=self._outage, daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket,
              watch: Callable[[bytes], None] | None) -> None:
        try:
            while data := src.recv(65536):
                if watch:
                    watch(data)
                    if self.down_at is not None and self.up_at is None:
                        break  # the trigger's own request dies with the endpoint
                dst.sendall(data)
        except OSError:
            pass  # cut by the outage, or by the other side
        _close(src, dst)

    def _cut_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        _close(*conns)

    def _outage(self) -> None:
        self._listener.close()
        self._cut_all()
        time.sleep(self.outage)
        if self._closed:
            return
        self._listener = self._listen(self.port)
        self.up_at = time.time()
        threading.Thread(target=self._accept_loop, args=(self._listener,), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self._cut_all()


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

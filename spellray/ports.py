"""Free TCP ports, found by binding: the one helper every process spellray starts with a
port of its own uses (Ray's head, the server, TensorBoard, a rank's store, tests). Imports
only the standard library, so the runner can use it at no cost."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1", preferred: int | None = None, scan: int = 1) -> int:
    """A port free on ``host`` now: ``preferred`` or one of the ``scan`` after it if one is,
    else any the OS picks. ("" as ``host``: free on every interface.) Another process may
    take it before it is used; callers that can should let the program bind port 0."""
    if preferred is not None:
        for port in range(preferred, preferred + scan):
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                    return port
                except OSError:
                    continue
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]

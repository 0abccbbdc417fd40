"""moto's S3 server, as `moto_server` runs it (its WSGI app on werkzeug's threaded server),
plus a record of every request it answered: one JSON line each (method, path, status) in
``--requests FILE``. Tests count what reached the bucket from that record, not by reading
werkzeug's access log, whose styling (ANSI colours on non-200 lines) is not ours to rely on.

Run as a subprocess: python tests/moto_server.py --port N --requests FILE
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class RequestRecorder:
    """WSGI middleware: appends each answered request to a JSON-lines file."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str) -> None:
        self.app = app
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (lives with the server)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def recording_start_response(status: str, headers: list, *args: Any) -> Any:
            # WSGI hands the path over as latin-1 decoded bytes; keys are UTF-8.
            path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
            line = json.dumps({"method": environ["REQUEST_METHOD"], "path": path,
                               "query": environ.get("QUERY_STRING", ""),
                               "status": int(status.split()[0])})
            with self._lock:
                self._file.write(line + "\n")
            return start_response(status, headers, *args)

        return self.app(environ, recording_start_response)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="JSON-lines file of answered requests")
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, RequestRecorder(app, args.requests), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

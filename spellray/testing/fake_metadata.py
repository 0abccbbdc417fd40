"""A fake cloud instance-metadata server on 127.0.0.1 (tests, benchmarks): answers as AWS
(IMDSv2 token, spot/instance-action) and GCP (instance/preempted) do, with no notice until
``announce`` is called. Point a run at it with SPELLRAY_METADATA_URL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spellray.runner.preemption import AWS_NOTICE, AWS_TOKEN, GCP_NOTICE


class FakeMetadata:
    def __init__(self, cloud: str = "aws") -> None:
        self.cloud = cloud
        self.announced = threading.Event()
        self.asked = 0  # notice requests answered: the runner is watching
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                self._answer(200, "token") if owner.cloud == "aws" and \
                    self.path == AWS_TOKEN else self._answer(404)

            def do_GET(self) -> None:
                if owner.cloud == "aws" and self.path == AWS_NOTICE:
                    owner.asked += 1
                    if owner.announced.is_set():
                        self._answer(200, json.dumps(
                            {"action": "terminate", "time": "2026-12-07T08:00:00Z"}))
                    else:
                        self._answer(404)
                elif owner.cloud == "gcp" and self.path == GCP_NOTICE and \
                        self.headers.get("Metadata-Flavor") == "Google":
                    owner.asked += 1
                    self._answer(200, "TRUE" if owner.announced.is_set() else "FALSE")
                else:
                    self._answer(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def announce(self) -> None:
        self.announced.set()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

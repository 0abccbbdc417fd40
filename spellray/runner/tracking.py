"""The MLflow side of a run: ask the server for the run's MLflow run while the code is being
fetched, then give the command the environment that points plain ``mlflow`` at it (over
HTTP, through the server, with the run's own token), plus SPELLRAY_METRICS_FILE for
``spellray.metrics.send_metric``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from spellray.metrics import METRICS_FILE_ENV
from spellray.runner.server_api import ServerApi

# How long the command's start waits for the server's answer at most: a server that just
# started may still be loading MLflow (a few seconds). After that the command runs without
# the MLFLOW_* variables; send_metric still works (its metrics are forwarded regardless).
WAIT_SECONDS = 30.0
# How long a server that does not answer at all (down, restarting) is tried again.
RETRY_SECONDS = 5.0


class TrackingSetup:
    def __init__(self, api: ServerApi, token: str, answer: dict[str, str] | None = None) -> None:
        """``answer``: the server's, when it came with the run (a search's trial); else it
        is asked for now, in the background."""
        self._api = api
        self._token = token
        self._answer: dict[str, str] | None = answer
        self.note: str | None = None
        self._thread = threading.Thread(target=self._ask, name="tracking", daemon=True)
        if answer is None:
            self._thread.start()

    def _ask(self) -> None:
        deadline = time.monotonic() + RETRY_SECONDS
        answer = self._api.deliver("/tracking", None, lambda: deadline, timeout=WAIT_SECONDS)
        self._api.close()
        if answer is None:
            self.note = "the server did not answer"
        elif answer[0] == 200:
            self._answer = json.loads(answer[1])
        else:
            said = answer[1][:300].decode(errors="replace")
            self.note = f"the server answered {answer[0]}: {said}"

    def env(self, metrics_file: Path) -> dict[str, str]:
        """The variables the command gets. A user's own MLFLOW_TRACKING_URI (``-e``) wins:
        then none of the MLFLOW_* ones are set, as they would name a run on another server."""
        env = {METRICS_FILE_ENV: str(metrics_file)}
        if os.environ.get("MLFLOW_TRACKING_URI"):
            self.note = "MLFLOW_TRACKING_URI is set for the run; mlflow logs there"
            return env
        if self._thread.ident is not None:
            self._thread.join(WAIT_SECONDS)
        if self._answer is None:
            self.note = self.note or "the server did not answer in time"
            return env
        return {**env,
                "MLFLOW_TRACKING_URI": self._answer["tracking_uri"],
                "MLFLOW_RUN_ID": self._answer["mlflow_run_id"],
                "MLFLOW_EXPERIMENT_ID": self._answer["experiment_id"],
                "MLFLOW_TRACKING_TOKEN": self._token}

"""The server's only door to Ray's Jobs API (what a job's status means for a run or a search
is job_status.py's to say), and the reading of a failed job's environment build."""

from __future__ import annotations

import contextlib
import re
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from spellray.errors import RayUnavailable

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient


_RESOURCE_DIR = re.compile(r"runtime_resources/\w+/([0-9a-f]{40})")


def is_environment_failure(job: JobDetails) -> bool:
    error_type = getattr(job.error_type, "value", job.error_type)
    return error_type == "RUNTIME_ENV_SETUP_FAILURE" or \
        (job.message or "").startswith("runtime_env setup failed")


# The lines of a pip or uv failure that say what went wrong, most telling last.
_INSTALL_ERROR = re.compile(r"^\s*(ERROR:|error:|cause:|hint:)\s*(.+)$")


def environment_failure_reason(message: str) -> str:
    """One line for a failed environment build: pip's or uv's own words where there are
    some (Ray's message wraps them in a traceback)."""
    found = [m for line in message.splitlines() if (m := _INSTALL_ERROR.match(line))]
    causes = [m[2] for m in found if m[1] in ("cause:", "ERROR:")] or [m[2] for m in found]
    detail = causes[-1] if causes else message.strip().splitlines()[0]
    return f"build failed: {detail.strip()[:500]}"


def _about(text: str, marker: str) -> str:
    """From the first line that names ``marker`` on, without lines about other
    environments (their set-ups interleave in the same file)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if marker in line)
    return "".join(line for line in lines[start:]
                   if all(h == marker for h in _RESOURCE_DIR.findall(line)))


# Seconds one request to Ray's dashboard may take before the call counts as failed.
RAY_REQUEST_TIMEOUT = 60

def _transient(refusal: str) -> bool:
    """Whether Ray's refusal of a submission is worth trying again: a head that just started
    answers before its job agent is up, and its dashboard has answered a first submission
    with a 500 ("Server disconnected") on a loaded machine. A retry of a submission that did
    go through is refused as "already exists", which the queue takes as submitted."""
    return "No available agent" in refusal or \
        (re.search(r"status code 5\d\d", refusal) is not None and "already exists" not in refusal)


# How long a submission waits for the job agent of a Ray head that is still starting.
# 90 s: on a loaded 2-core node a fresh head's job agent has been seen to take over 30 s.
AGENT_WAIT_SECONDS = 90


def _token_refused(address: str, exc: Exception) -> RayUnavailable | None:
    """Ray's refusal of the token the server sent (ray.exceptions.AuthenticationError: a
    401 or 403 from the dashboard), as one line that says what to do."""
    from ray.exceptions import AuthenticationError

    if not isinstance(exc, AuthenticationError):
        return None
    return RayUnavailable(
        f"the Ray cluster at {address} refused the server's Ray token: start the server "
        "with the head's token (RAY_AUTH_MODE=token and RAY_AUTH_TOKEN or "
        "RAY_AUTH_TOKEN_PATH; see docs/security.md, Ray's own token)")


class RayJobs:
    def __init__(self, address: str) -> None:
        self.address = address

    @cached_property
    def _client(self) -> JobSubmissionClient:
        from ray.job_submission import JobSubmissionClient

        class TimedJobSubmissionClient(JobSubmissionClient):
            # Ray's SDK sends its requests with no timeout: a dashboard that stops answering
            # would hang the reconciler thread for good. A timeout raises (an OSError), and
            # the next pass tries again.
            def _do_request(self, *args: Any, **kwargs: Any) -> Any:
                kwargs.setdefault("timeout", RAY_REQUEST_TIMEOUT)
                return super()._do_request(*args, **kwargs)

        try:
            return TimedJobSubmissionClient(self.address)
        except Exception as exc:  # ConnectionError, or RuntimeError from the version check
            if refused := _token_refused(self.address, exc):
                raise refused from exc
            raise RayUnavailable(
                f"the Ray cluster at {self.address} is unreachable ({exc}); "
                "start it, or set SPELLRAY_RAY_ADDRESS to its dashboard address"
            ) from exc

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RayUnavailable:
            raise
        except Exception as exc:
            if refused := _token_refused(self.address, exc):
                self.__dict__.pop("_client", None)  # the head may come back with its token
                raise refused from exc
            text = str(exc)
            if "does not exist" in text or "not found" in text.lower():
                raise LookupError(text) from exc
            if isinstance(exc, (ConnectionError, OSError)) or "Failed to connect" in text:
                # Drop the client so the next call reconnects (the head may have restarted).
                self.__dict__.pop("_client", None)
                raise RayUnavailable(
                    f"the Ray cluster at {self.address} is unreachable while trying to {what}"
                ) from exc
            raise

    def submit(self, submission_id: str, entrypoint: str, runtime_env: dict[str, Any],
               num_cpus: float, num_gpus: float, resources: dict[str, float],
               metadata: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while True:
            try:
                self._call("submit a run", lambda: self._client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    runtime_env=runtime_env,
                    entrypoint_num_cpus=num_cpus,
                    entrypoint_num_gpus=num_gpus or None,
                    entrypoint_resources=resources or None,
                    metadata=metadata,
                ))
                return
            except RuntimeError as exc:
                if not _transient(str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def reachable(self) -> None:
        """Raise RayUnavailable unless Ray's Jobs API answers (asked once, then kept)."""
        self._call("reach Ray", lambda: self._client)

    def stop(self, submission_id: str) -> None:
        with contextlib.suppress(LookupError):  # already gone: nothing to stop
            self._call("stop a run", lambda: self._client.stop_job(submission_id))

    def jobs(self) -> dict[str, JobDetails]:
        details = self._call("list jobs", lambda: self._client.list_jobs())
        return {job.submission_id: job for job in details if job.submission_id}

    def job(self, submission_id: str) -> JobDetails | None:
        """One job, asked now (None if Ray has no such job)."""
        try:
            return self._call("look up a run", lambda: self._client.get_job_info(submission_id))
        except LookupError:
            return None

    def environment_setup_log(self, marker: str, lines: int = 400) -> tuple[str, str | None]:
        """The lines of Ray's runtime_env set-up log about one environment (``marker`` is
        its resource folder's hash), from whichever node built it, and where they came from
        ("node-ip:file"). Ray writes every job's set-up into one shared file per node, read
        here through the dashboard's log API, so the server reaches other nodes too."""
        import httpx

        from spellray.cluster.ray_auth import http_headers

        def get(path: str, **params: str) -> httpx.Response:
            response = httpx.get(f"{self.address}{path}", params=params,
                                 headers=http_headers(), timeout=RAY_REQUEST_TIMEOUT)
            response.raise_for_status()
            return response

        try:
            nodes = get("/api/v0/nodes").json()["data"]["result"]["result"]
            for node in (n for n in nodes if n.get("state") == "ALIVE"):
                listing = get("/api/v0/logs", node_id=node["node_id"],
                              glob="runtime_env_setup*").json()["data"]["result"]
                for name in sorted(f for files in listing.values() for f in files):
                    text = get("/api/v0/logs/file", node_id=node["node_id"], filename=name,
                               lines=str(lines)).text
                    if marker in text:
                        return _about(text, marker), f"{node.get('node_ip')}:{name}"
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            return f"(Ray's set-up log could not be read: {exc})\n", None
        return "", None

    def logs(self, submission_id: str) -> str:
        try:
            return self._call("read logs", lambda: self._client.get_job_logs(submission_id))
        except LookupError:
            return ""

    def nodes(self) -> list[Any]:
        """Every node Ray knows, alive or dead (Ray's state API, over the same dashboard)."""
        from ray.util.state import list_nodes

        return self._call("list the cluster's nodes", lambda: list_nodes(
            address=self.address, detail=True, limit=10_000, raise_on_missing_output=False))

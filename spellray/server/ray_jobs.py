"""The server's only door to Ray's Jobs API, and the one place Ray's JobStatus becomes a run
status."""

from __future__ import annotations

import contextlib
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from spellray.errors import RayUnavailable
from spellray.schemas import RunStatus

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient


def map_job_status(ray_status: str, stop_requested: str | None) -> RunStatus:
    """Ray JobStatus -> run status. A RUNNING job means the runner is up: it is building
    until it reports that the user's command started."""
    if ray_status == "PENDING":
        return RunStatus.requested
    if ray_status == "RUNNING":
        return RunStatus.building
    if ray_status == "SUCCEEDED":
        return RunStatus.complete
    if ray_status == "STOPPED":
        return {"kill": RunStatus.killed, "stop": RunStatus.stopped}.get(
            stop_requested or "", RunStatus.interrupted
        )
    return RunStatus.failed


# Seconds one request to Ray's dashboard may take before the call counts as failed.
RAY_REQUEST_TIMEOUT = 60

# How long a submission waits for the job agent of a Ray head that is still starting.
AGENT_WAIT_SECONDS = 30


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
               num_cpus: float, num_gpus: float, resources: dict[str, float]) -> None:
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
                ))
                return
            except RuntimeError as exc:
                # A head that just started answers before its job agent is up.
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

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

    def logs(self, submission_id: str) -> str:
        try:
            return self._call("read logs", lambda: self._client.get_job_logs(submission_id))
        except LookupError:
            return ""

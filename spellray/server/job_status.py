"""The one place Ray's JobStatus becomes a spellray status: a run's (its runner's job) and
a search's (its driver's job)."""

from __future__ import annotations

from spellray.schemas import RunStatus, SearchStatus


def map_job_status(ray_status: str, stop_requested: str | None,
                   message: str | None = None) -> RunStatus:
    """Ray JobStatus -> run status. A PENDING job whose runtime_env is being set up is
    building its environment; a RUNNING job means the runner is up: it is building (apt,
    mounts) until it reports that the user's command started."""
    if ray_status == "PENDING":
        if message and "waiting for the runtime environment" in message:
            return RunStatus.building
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


def map_search_job_status(ray_status: str, current: SearchStatus) -> SearchStatus | None:
    """Ray JobStatus of a search's driver -> the search's status; None while the driver
    lives. The driver reports how the search ended before its job ends, so a search still
    active when its job has ended lost its driver: stopped if a stop was asked, else
    failed (whatever Ray says: the driver never said it completed)."""
    if not map_job_status(ray_status, None).is_terminal:
        return None
    return SearchStatus.stopped if current == SearchStatus.stopping else SearchStatus.failed

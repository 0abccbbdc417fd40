"""The SDK's runs: ``client.runs`` (start, follow, stop, label, outputs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, overload

from spellray.client._http import ResourceGroup
from spellray.client._run_request import build_run_request, upload_code
from spellray.schemas import (
    EnvironmentLog,
    LogChunk,
    OutputFile,
    Run,
    RunList,
    RunRequest,
    RunStatus,
    StatsChunk,
    StatsSample,
    StatusReport,
)
from spellray.settings import get_settings

# Seconds to wait for the server to resume an interrupted run that auto-resumes: its next
# reconcile pass does (about a second), later when Ray is unreachable for a while.
RESUME_PATIENCE = 600.0


class Runs(ResourceGroup):
    def upload_code(self, folder: Path, limit_mb: int | None = None,
                    commit_ref: str | None = None) -> dict[str, Any]:
        """Package ``folder`` (as it is in git commit ``commit_ref``, if given) and upload it
        unless the server has the same bytes already."""
        return upload_code(self._api, folder, limit_mb, commit_ref)

    def build_request(self, command: str, **options: Any) -> RunRequest:
        """A checked run request, its code uploaded: ``new``'s options."""
        return build_run_request(self._api, command, **options)

    def new(self, command: str, **options: Any) -> Run:
        """Start a run of ``command`` with the code in ``code_dir`` (default "."; None: no
        code), or with ``code`` that ``upload_code`` already uploaded, or as it is in git
        commit ``commit_ref``, or from the git repository at ``github_url`` (at
        ``github_ref``, default its HEAD), which the runner fetches. ``mounts`` are Spell's
        ``RESOURCE[:PATH]`` strings; ``environment`` comes from
        ``spellray.client.environment.build_environment``. With ``idempotent``, an identical
        run that is active or complete is returned instead of a new one.
        ``stop_conditions`` are ``"METRIC OP VALUE[:MIN_INDEX]"``
        (spellray.schemas.stop_conditions): the run stops, saving outputs, when one is met.
        Inside a workflow's manager, ``commit_label`` runs on the snapshot its `--repo
        LABEL=...` named, and a run given no code gets none (an empty working folder), as
        on Spell. The options are those of
        ``spellray.client._run_request.build_run_request``."""
        if "code" not in options and "code_dir" not in options and get_settings().workflow_id:
            options["code_dir"] = None
        body = self.build_request(command, **options)
        return Run.model_validate(self._api.request("POST", "/api/runs",
                                                    json=body.model_dump(mode="json")))

    def get(self, run_id: int) -> Run:
        return Run.model_validate(self._api.request("GET", f"/api/runs/{run_id}"))

    def list(self, limit: int = 50, label: str | None = None,
             include_workspaces: bool = False, project: str | None = None,
             archived: bool = False) -> RunList:
        """Runs, newest first; workspaces' runs too with ``include_workspaces``; only
        ``project``'s ("uncategorized": those in none); the archived ones with
        ``archived``."""
        params: dict[str, Any] = {"limit": limit}
        if label:
            params["label"] = label
        if include_workspaces:
            params["all"] = True
        if project is not None:
            params["project"] = project
        if archived:
            params["archived"] = True
        return RunList.model_validate(self._api.request("GET", "/api/runs", params=params))

    def archive(self, run_ids: list[int]) -> list[int]:
        """Archive ended runs (out of lists, ``ls runs/``, links and mounts; their files
        stay): all or none; the numbers archived now."""
        return self._api.request("POST", "/api/runs/archive", json={"runs": list(run_ids)})

    def unarchive(self, run_ids: list[int]) -> list[int]:
        return self._api.request("POST", "/api/runs/unarchive", json={"runs": list(run_ids)})

    def logs(self, run_id: int, offset: int = 0, wait: float = 0) -> LogChunk:
        """The log from byte ``offset``; ``wait`` seconds (long poll) for something new."""
        params = {"offset": offset, "wait": wait}
        return LogChunk.model_validate(
            self._api.request("GET", f"/api/runs/{run_id}/logs", params=params))

    def follow(self, run_id: int, offset: int = 0, wait: float = 5.0) -> Iterator[LogChunk]:
        """Log chunks as they come, until the run has ended and its log is read to the end."""
        while True:
            chunk = self.logs(run_id, offset, wait)
            offset = chunk.offset
            yield chunk
            if chunk.finished:
                return

    def stats_chunk(self, run_id: int, offset: int = 0, wait: float = 0) -> StatsChunk:
        """The run's hardware stats samples from byte ``offset`` of its stats file; ``wait``
        seconds (long poll) for a new one."""
        params = {"offset": offset, "wait": wait}
        return StatsChunk.model_validate(
            self._api.request("GET", f"/api/runs/{run_id}/stats", params=params))

    @overload
    def stats(self, run_id: int, follow: Literal[False] = False) -> list[StatsSample]: ...

    @overload
    def stats(self, run_id: int, follow: Literal[True]) -> Iterator[StatsSample]: ...

    def stats(self, run_id: int,
              follow: bool = False) -> list[StatsSample] | Iterator[StatsSample]:
        """The run's hardware stats samples so far (every rank's, for a distributed run), in
        the order taken. ``follow=True``: an iterator of them, the ones so far and then each
        new one as it comes, that ends when the run has ended."""
        if follow:
            return self._follow_stats(run_id)
        samples: list[StatsSample] = []
        offset = 0
        while True:  # a long run's file may come in more than one answer
            chunk = self.stats_chunk(run_id, offset)
            samples += chunk.samples
            if chunk.offset == offset:
                return samples
            offset = chunk.offset

    def _follow_stats(self, run_id: int, wait: float = 10.0) -> Iterator[StatsSample]:
        offset = 0
        while True:
            chunk = self.stats_chunk(run_id, offset, wait)
            offset = chunk.offset
            yield from chunk.samples
            if chunk.finished:
                return

    def wait(self, run_id: int, poll: float = 0.2, follow_resumes: bool = True) -> Run:
        """The run once it has ended. An interrupted run that auto-resumes is waited for
        through the run it is resumed as, and so on along the chain (``follow_resumes``):
        the run returned is the last of it (its ``resumed_from`` says where it came from)."""
        while True:
            while not (run := self.get(run_id)).status.is_terminal:
                time.sleep(poll)
            resumed = self.resumed_as(run, poll) if follow_resumes else None
            if resumed is None:
                return run
            run_id = resumed

    def resumed_as(self, run: Run, poll: float = 0.2,
                   patience: float = RESUME_PATIENCE) -> int | None:
        """The run an interrupted run is resumed as, once the server has made it (its next
        reconcile pass); None when there is none: no auto-resume, refused (--max-resumes,
        a workflow that ended: ``status_reason`` says), or none within ``patience`` s."""
        deadline = time.monotonic() + patience
        while run.resume_pending and time.monotonic() < deadline:
            time.sleep(poll)
            run = self.get(run.id)
        return run.resumed_as if run.status is RunStatus.interrupted else None

    def environment_log(self, run_id: int) -> EnvironmentLog:
        """The tail of the log of the run's environment build (Ray's runtime_env set-up)."""
        return EnvironmentLog.model_validate(
            self._api.request("GET", f"/api/runs/{run_id}/environment-log"))

    def outputs(self, run_id: int) -> list[OutputFile]:
        data = self._api.request("GET", f"/api/runs/{run_id}/outputs")
        return [OutputFile.model_validate(item) for item in data]

    def kill(self, run_id: int) -> Run:
        return Run.model_validate(self._api.request("POST", f"/api/runs/{run_id}/kill"))

    def stop(self, run_id: int) -> Run:
        return Run.model_validate(self._api.request("POST", f"/api/runs/{run_id}/stop"))

    def report(self, run_id: int, status: RunStatus, reason: str | None = None,
               exit_code: int | None = None) -> Run:
        """Report a run's status, as its runner does (a --local workflow manager's CLI)."""
        body = StatusReport(status=status, reason=reason, exit_code=exit_code)
        return Run.model_validate(self._api.request("POST", f"/api/runs/{run_id}/status",
                                                    json=body.model_dump(mode="json")))

    def label(self, run_id: int, label: str, remove: bool = False) -> Run:
        method = "DELETE" if remove else "PUT"
        return Run.model_validate(self._api.request(method, f"/api/runs/{run_id}/labels/{label}"))

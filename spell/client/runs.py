"""Spell's ``client.runs`` and its ``Run`` object, over spellray's ``client.runs``.

``RunsService.new`` takes Spell's keyword arguments and maps each onto spellray's run
options (spell/client/options.py); the ``Run`` polls the spellray server.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from spell.api.exceptions import UnsupportedError, WaitError
from spell.api.models import LogEntry
from spell.api.record_view import RecordView
from spell.client.options import run_options
from spellray.client import Client
from spellray.errors import InvalidInput, NotFound
from spellray.schemas import RunStatus

# How often a wait or a follow asks the server again.
POLL = 1.0

# Spell's statuses. spellray has no separate build / mount failure (such a run is `failed`,
# with the reason) and no `pushing` (spellray's `saving` covers it).
BUILDING, RUNNING, SAVING, PUSHING = "building", "running", "saving", "pushing"
COMPLETE, FAILED, STOPPED, KILLED, INTERRUPTED = (
    "complete", "failed", "stopped", "killed", "interrupted")
BUILD_FAILED, MOUNT_FAILED = "build_failed", "mount_failed"
FINAL = (COMPLETE, FAILED, BUILD_FAILED, MOUNT_FAILED, INTERRUPTED, KILLED, STOPPED)
# Spell's conditions for wait_metric.
EQUALS, GREATER_THAN, GREATER_THAN_EQUALS, LESS_THAN, LESS_THAN_EQUALS = (
    "eq", "gt", "gte", "lt", "lte")
CONDITIONS: dict[str, Callable[[Any, Any], bool]] = {
    EQUALS: operator.eq, GREATER_THAN: operator.gt, GREATER_THAN_EQUALS: operator.ge,
    LESS_THAN: operator.lt, LESS_THAN_EQUALS: operator.le}
# What each Spell status is on spellray.
_AS_SPELLRAY = {PUSHING: SAVING, BUILD_FAILED: FAILED, MOUNT_FAILED: FAILED}


class Run(RecordView):
    """A spellray run with Spell's attributes and methods. Any other attribute of spellray's
    run (``command``, ``labels``, ``created_at``, ...) reads through."""

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.status}>"

    @property
    def id(self) -> int:
        return self._record.id

    @property
    def status(self) -> str:
        return self._record.status.value

    @property
    def user_exit_code(self) -> int | None:
        return self._record.exit_code

    @property
    def already_existed(self) -> bool:
        """True when ``idempotent=True`` returned an identical earlier run."""
        return self._record.reused

    def refresh(self) -> None:
        self._record = self._client.runs.get(self.id)

    def stop(self) -> None:
        """Stop the run; its outputs are saved."""
        self._record = self._client.runs.stop(self.id)

    def kill(self) -> None:
        self._record = self._client.runs.kill(self.id)

    def add_label(self, label_name: str) -> None:
        self._record = self._client.runs.label(self.id, label_name)

    def remove_label(self, label_name: str) -> None:
        self._record = self._client.runs.label(self.id, label_name, remove=True)

    def wait_status(self, *statuses: str) -> None:
        """Return once the run has reached one of ``statuses`` (even if it has moved on
        since); a WaitError once it has ended without reaching any. A run interrupted and
        resumed (auto-resume) is waited for on through the run it is resumed as, and this
        Run becomes that run (its ``id`` changes; ``resumed_from`` says the one before)."""
        wanted = {_status(s) for s in statuses}
        if not wanted:
            raise InvalidInput("wait_status needs at least one status, e.g. "
                               "run.wait_status(client.runs.COMPLETE)")
        while True:
            reached = {event.status for event in self._record.history} | {self._record.status}
            if reached & wanted:
                return
            if (self._record.status.is_terminal and
                    (resumed := self._client.runs.resumed_as(self._record, POLL)) is not None):
                self._record = self._client.runs.get(resumed)
                continue
            if self._record.status.is_terminal:
                reason = f" ({self._record.status_reason})" if self._record.status_reason else ""
                raise WaitError(f"run {self.id} ended {self.status}{reason} without reaching "
                                f"{' or '.join(statuses)}")
            time.sleep(POLL)
            self.refresh()

    def logs(self, follow: bool = False, offset: int = 0) -> Iterator[LogEntry]:
        """The run's log, one entry per line (from byte ``offset``); with ``follow``, until
        the run ends. A change of status while following is an entry of its own
        (``status_event``)."""
        runs = self._client.runs
        chunks = runs.follow(self.id, offset) if follow else _read_all(runs, self.id, offset)
        partial, status, started = "", self.status, False
        for chunk in chunks:
            if follow and (chunk.status.value != status or not started):
                status, started = chunk.status.value, True
                yield LogEntry(status=status, log=f"run {self.id} is {status}",
                               status_event=True)
            status = chunk.status.value
            *lines, partial = (partial + chunk.text).split("\n")
            for line in lines:
                yield LogEntry(status=chunk.status.value, log=line)
        if partial:
            yield LogEntry(status=status, log=partial)

    def cp(self, source_path: str, destination_directory: str | Path = ".",
           force: bool = False) -> int:
        """Copy ``source_path`` of the run's outputs (a file or folder) into the local
        ``destination_directory``; the bytes copied. An existing local file is kept (a
        Conflict) unless ``force``."""
        destination = Path(destination_directory)
        source = f"runs/{self.id}/{source_path.strip('/')}".rstrip("/")
        plan = self._client.resources.plan_copy(source, destination, force=force)
        return self._client.resources.copy(plan)

    def metrics(self, metric_name: str, follow: bool = False
                ) -> Iterator[tuple[datetime, int, float | str]]:
        """``(timestamp, index, value)`` of each value of ``metric_name`` (a text metric's
        values are str); with ``follow``, new values as they come until the run ends."""
        shown = 0
        while True:
            ended = follow and self._ended()  # before reading: the last values are then in
            try:
                values = self._client.metrics.get(self.id, metric_name).values
            except NotFound:
                values = []
            for value in values[shown:]:
                yield datetime.fromtimestamp(value.time), value.index, value.value
            shown = len(values)
            if not follow or ended:
                return
            time.sleep(POLL)

    def wait_metric(self, metric_name: str, condition: str, value: float | str) -> None:
        """Return once a value of ``metric_name`` meets ``condition`` (``client.runs.EQUALS``,
        ``LESS_THAN``, ...) against ``value``; a WaitError if the run ends first."""
        compare = CONDITIONS.get(condition)
        if compare is None:
            raise InvalidInput(f"unknown condition {condition!r}: use one of "
                               f"{', '.join(CONDITIONS)} (client.runs.LESS_THAN, ...)")
        for _, _, got in self.metrics(metric_name, follow=True):
            if isinstance(got, str) != isinstance(value, str):
                continue  # a text is never compared with a number
            if compare(got, value):
                return
        raise WaitError(f"run {self.id} ended {self.status} before {metric_name} {condition} "
                        f"{value!r}")

    def _ended(self) -> bool:
        self.refresh()
        return self._record.status.is_terminal


def _status(status: str) -> RunStatus:
    """A Spell status as spellray's (PUSHING is saving, BUILD_FAILED / MOUNT_FAILED failed)."""
    try:
        return RunStatus(_AS_SPELLRAY.get(status, status))
    except ValueError:
        raise InvalidInput(f"{status!r} is not a run status; use client.runs.RUNNING, "
                           "COMPLETE, ... or *client.runs.FINAL") from None


def required_command(command: str | None) -> str:
    if not command:
        raise InvalidInput("give the command to run: client.runs.new(command=\"python "
                               "train.py\", ...)")
    return command


def _read_all(runs: Any, run_id: int, offset: int) -> Iterator[Any]:
    """The log as it is now, chunk by chunk, without waiting for more."""
    while True:
        chunk = runs.logs(run_id, offset)
        yield chunk
        if not chunk.text or chunk.offset == offset:
            return
        offset = chunk.offset


class RunsService:
    """Spell's ``client.runs``: start, find and list runs."""

    BUILDING, RUNNING, SAVING, PUSHING = BUILDING, RUNNING, SAVING, PUSHING
    COMPLETE, FAILED, STOPPED, KILLED, INTERRUPTED = (
        COMPLETE, FAILED, STOPPED, KILLED, INTERRUPTED)
    BUILD_FAILED, MOUNT_FAILED, FINAL = BUILD_FAILED, MOUNT_FAILED, FINAL
    EQUALS, GREATER_THAN, GREATER_THAN_EQUALS = EQUALS, GREATER_THAN, GREATER_THAN_EQUALS
    LESS_THAN, LESS_THAN_EQUALS = LESS_THAN, LESS_THAN_EQUALS

    def __init__(self, client: Client) -> None:
        self._client = client

    def new(self, command: str | None = None, **kwargs: Any) -> Run:
        """Start a run of ``command``: Spell's keyword arguments (``machine_type``,
        ``attached_resources``, ``pip_packages``, ``envvars``, ``timeout``, ...; see
        docs/spell-api.md). As on Spell, a run gets no code unless ``commit_label`` (in a
        workflow) or ``github_url`` names some."""
        options = run_options(command=required_command(command), **kwargs)
        return Run(self._client, self._client.runs.new(options.pop("command"), **options))

    run = new  # older Spell's name for it

    def get(self, run_id: int) -> Run:
        return Run(self._client, self._client.runs.get(run_id))

    def list(self, number: int = 50, project: str | None = None,
             show_uncategorized: bool = False, labels: list[str] | None = None) -> list[Run]:
        """The newest ``number`` runs; with ``labels``, those with any of them; only
        ``project``'s, or with ``show_uncategorized`` only those in no project."""
        if project is not None and show_uncategorized:
            raise UnsupportedError("give project or show_uncategorized, not both")
        if show_uncategorized:
            project = "uncategorized"
        if not labels:
            records = self._client.runs.list(limit=number, project=project).runs
        else:
            found = {r.id: r for label in labels
                     for r in self._client.runs.list(limit=number, label=label,
                                                     project=project).runs}
            records = sorted(found.values(), key=lambda r: r.id, reverse=True)[:number]
        return [Run(self._client, r) for r in records]

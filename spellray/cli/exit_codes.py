"""Exit codes of the `spell` command, in one place (also listed in docs/configuration.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spellray.schemas import RunStatus

COMPLETE = 0
ERROR = 1  # bad input, server down, ...
USAGE = 2  # wrong flags (typer/click)
RUN_FAILED = 3
RUN_ENDED_BY_USER = 4  # killed, stopped or interrupted
NOT_FOUND = 5
DETACHED = 130  # Ctrl-C on a followed run: it keeps running


def for_status(status: RunStatus) -> int:
    if status.value == "complete" or not status.is_terminal:
        return COMPLETE
    if status.value == "failed":
        return RUN_FAILED
    return RUN_ENDED_BY_USER

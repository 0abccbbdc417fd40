"""Shared terminal output: one console for data, one for messages (stderr)."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console

# No emoji codes: `:x:` in a command is a Spell placeholder, not an emoji.
console = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

STATUS_STYLE = {
    "complete": "green", "failed": "red", "killed": "red", "stopped": "yellow",
    "interrupted": "yellow", "running": "cyan", "saving": "cyan", "building": "blue",
    "requested": "blue",
}


def styled_status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = (datetime.now(timezone.utc) - moment).total_seconds()
    return f"{duration(seconds)} ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def run_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    return duration(((end or datetime.now(timezone.utc)) - start).total_seconds())

"""Shared terminal output: one console for data, one for messages (stderr)."""

from __future__ import annotations

from rich.console import Console

from spellray.humanize import ago as ago  # the CLI's tables use these too
from spellray.humanize import duration as duration
from spellray.humanize import run_duration as run_duration

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



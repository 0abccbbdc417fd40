"""Times and sizes as people read them, for the CLI's tables and the console's pages alike
(standard library only: `spell --help` and the server import it at no cost)."""

from __future__ import annotations

from datetime import datetime, timezone


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{duration((datetime.now(timezone.utc) - moment).total_seconds())} ago"


def run_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    return duration(((end or datetime.now(timezone.utc)) - start).total_seconds())


def size(value: float | None) -> str:
    """Bytes as B, KB, MB, GB or TB (1024 each)."""
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"

"""A run's log as a page shows it: the last lines first (the first HTML of a run page holds
them), more on demand, the whole file by link. Read from the end of the file in storage, so
a 100,000-line log costs a page what 200 lines do."""

from __future__ import annotations

from spellray.storage.store import Storage

FIRST_LINES = 200
EARLIER_LINES = 1000
# Read backwards in blocks of this size until enough lines are found.
BLOCK = 64 * 1024
# A line longer than this is cut (a log of one huge line would otherwise be read whole).
MOST_BYTES = 4 * 1024 * 1024


def earlier(storage: Storage, path: str, before: int, lines: int) -> tuple[str, int]:
    """Up to ``lines`` whole lines ending at byte ``before``: (text, where it starts)."""
    start = before
    data = b""
    while start > 0 and data.count(b"\n") <= lines and before - start < MOST_BYTES:
        start = max(0, start - BLOCK)
        data = storage.read_bytes(path, start)[: before - start]
    # Keep the last ``lines`` lines (a last line without its newline counts too).
    cut = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0) - lines
    if cut > 0:
        skip = 0
        for _ in range(cut):
            skip = data.index(b"\n", skip) + 1
        data, start = data[skip:], start + skip
    return data.decode(errors="replace"), start


def tail(storage: Storage, path: str, lines: int, whole: bool) -> tuple[str, int, int]:
    """The last ``lines`` lines: (text, where they start, where the log ends now). Unless
    the log is ``whole`` (its run ended), a last partial line is left for the next read."""
    size = storage.size(path)
    if not size:
        return "", 0, 0
    data = storage.read_bytes(path, max(0, size - BLOCK))
    end = size if whole or data.endswith(b"\n") else \
        size - (len(data) - data.rfind(b"\n") - 1)
    text, start = earlier(storage, path, end, lines)
    return text, start, end

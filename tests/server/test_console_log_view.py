"""The console's log views read from the end of a log in storage (a real local storage)."""

from __future__ import annotations

from pathlib import Path

from spellray.server.console.log_view import earlier, tail
from spellray.settings import Settings
from spellray.storage.store import Storage

LOG = "runs/1/.spell/log"


def storage_with(tmp_path: Path, text: str) -> Storage:
    storage = Storage(f"file://{tmp_path / 'storage'}", Settings(home=tmp_path))
    storage.write_bytes(LOG, text.encode())
    return storage


def test_the_tail_of_a_long_log_and_what_is_before_it(tmp_path: Path) -> None:
    lines = [f"step {i}\n" for i in range(100_000)]
    storage = storage_with(tmp_path, "".join(lines))
    text, start, end = tail(storage, LOG, 200, whole=True)
    assert text == "".join(lines[-200:])
    assert end == len("".join(lines)) and start == len("".join(lines[:-200]))
    before, first = earlier(storage, LOG, start, 1000)
    assert before == "".join(lines[-1200:-200]) and first == len("".join(lines[:-1200]))


def test_a_partial_last_line_waits_while_the_run_writes(tmp_path: Path) -> None:
    storage = storage_with(tmp_path, "one\ntwo\nthr")
    assert tail(storage, LOG, 200, whole=False) == ("one\ntwo\n", 0, 8)
    assert tail(storage, LOG, 200, whole=True) == ("one\ntwo\nthr", 0, 11)
    assert tail(storage, LOG, 1, whole=True) == ("thr", 8, 11)
    assert earlier(storage, LOG, 8, 1) == ("two\n", 4)


def test_no_log_yet(tmp_path: Path) -> None:
    storage = Storage(f"file://{tmp_path / 'storage'}", Settings(home=tmp_path))
    assert tail(storage, LOG, 200, whole=False) == ("", 0, 0)

"""Errors as a user meets them: the real CLI against the real server, one line each, the
exit code docs/configuration.md lists, never a traceback; and nothing lost on the way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import Spell


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


@contextmanager
def runs_table_gone(home: Path) -> Iterator[None]:
    """Break the server's database under it (a real failure no route plans for), and mend it
    afterwards."""
    db = sqlite3.connect(home / "spellray.db")
    try:
        db.execute("ALTER TABLE runs RENAME TO runs_hidden")
        db.commit()
        yield
    finally:
        db.execute("ALTER TABLE runs_hidden RENAME TO runs")
        db.commit()
        db.close()


def test_an_unexpected_server_failure_is_one_line_and_exit_1(spell: Spell,
                                                             project: Path) -> None:
    submitted = spell("run", "-b", "echo kept", cwd=project)
    assert submitted.returncode == 0, submitted.stderr
    with runs_table_gone(spell.home):
        broken = spell("ps")
        assert broken.returncode == 1, (broken.stdout, broken.stderr)
        line = one_error_line(broken.stderr)
        assert "the server failed: OperationalError" in line and "server.log" in line
    # The server lived through it, and lost nothing.
    listed = spell("ps")
    assert listed.returncode == 0, listed.stderr
    assert "echo kept" in listed.stdout


def test_wire_errors_reach_the_user_as_one_line(spell: Spell, project: Path) -> None:
    missing = spell("info", "9999")
    assert missing.returncode == 5 and "there is no run 9999" in one_error_line(missing.stderr)
    unsafe = spell("ls", "runs/../../etc")
    assert unsafe.returncode == 1, unsafe.stderr
    one_error_line(unsafe.stderr)
    token = spell.home / "token"
    good, server_pid = token.read_text(), spell.state["server_pid"]
    token.write_text("not-the-token\n")
    try:
        refused = spell("ps")
    finally:
        token.write_text(good)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "refused the token" in one_error_line(refused.stderr)
    # Said, not mended behind the user's back by starting a second server.
    assert spell.state["server_pid"] == server_pid
    assert spell("ps").returncode == 0

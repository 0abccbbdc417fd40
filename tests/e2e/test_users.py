"""A member on the local cluster: the real CLI, the real server, a real Ray head. Logging in
changes who the laptop's commands speak as; logging out goes back to the admin's token, so a
single-user laptop that never logs in notices nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import Spell


def _field(whoami: str, name: str) -> str:
    words = whoami.split()
    return words[words.index(name) + 1]


def test_a_member_logs_in_runs_and_logs_out(spell: Spell, project: Path) -> None:
    assert _field(spell("whoami").stdout, "user") == "admin"  # nobody logged in: the admin
    added = spell("users", "add", "alice")
    assert added.returncode == 0, added.stderr
    token = added.stdout.splitlines()[1].strip()
    assert spell("login", "--token", token).returncode == 0
    assert set(json.loads((spell.home / "logins.json").read_text())) == {"local"}
    me = spell("whoami").stdout
    assert (_field(me, "user"), _field(me, "role")) == ("alice", "member")

    done = spell("run", "python train.py", cwd=project)  # a member's run, to the end
    assert done.returncode == 0, done.stderr
    run_id = int(done.stderr.split("run ")[1].split()[0])
    assert (spell.storage / "runs" / str(run_id) / "model" / "weights.txt").read_text() == "42"
    refused = spell("users", "add", "bob")
    assert refused.returncode != 0 and "only an admin" in refused.stderr

    assert spell("logout").returncode == 0
    assert _field(spell("whoami").stdout, "user") == "admin"
    assert spell("info", str(run_id)).returncode == 0

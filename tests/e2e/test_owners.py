"""A team's run on the local cluster: the real CLI on three laptops (alice and carol in team
vision, bob not), the real server, a real Ray head. alice makes vision the active owner and
starts a run; carol sees it and stops it; bob does not see it at all."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli.test_users import Cli, _cli, add_user, one_error_line
from tests.helpers import SPELL, Spell

SLOW = "sleep 600"


def _numbers(ps: str) -> list[str]:
    """The run numbers `spell ps` lists (its first column)."""
    return [line.split()[0] for line in ps.splitlines()[1:] if line.strip()]


def _laptop(spell: Spell, home: Path, name: str) -> Cli:
    laptop = _cli(home, spell.url)
    admin = _cli(spell.home, spell.url, spell.token)
    laptop.ok("login", "--token", add_user(admin, name))
    return laptop


def test_a_teams_run_is_seen_and_stopped_by_a_teammate(spell: Spell, project: Path,
                                                       tmp_path: Path) -> None:
    alice, carol, bob = (_laptop(spell, tmp_path / n, n) for n in ("alice", "carol", "bob"))
    admin = _cli(spell.home, spell.url, spell.token)
    admin.ok("teams", "create", "vision")
    admin.ok("teams", "add", "vision", "alice")
    admin.ok("teams", "add", "vision", "carol")
    alice.ok("owner", "vision")
    started = subprocess.run([*SPELL, "run", "-b", SLOW], cwd=project, env=alice.env,
                             capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    run_id = int(started.stdout.split("run ")[1].split()[0])
    info = spell.wait_status(run_id, "running")
    assert info["owner"] == "vision"

    assert str(run_id) in _numbers(carol.ok("ps"))  # a teammate sees it
    one_error_line(bob("info", str(run_id)), f"there is no run {run_id}")
    one_error_line(bob("stop", str(run_id)), f"there is no run {run_id}")
    assert str(run_id) not in _numbers(bob.ok("ps"))
    carol.ok("stop", str(run_id))
    assert spell.wait_status(run_id, "stopped")["owner"] == "vision"

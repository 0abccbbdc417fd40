"""Spell's command lines that spellray renamed, refuses or has not built: the real `spell`
CLI as a subprocess against a real spellray server with no Ray cluster behind it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import ERROR, OK, USAGE, one_error_line
from tests.helpers import SPELL, RaylessServer

RUN_FAILED = 3  # docs/configuration.md#exit-codes


@pytest.fixture(scope="module")
def spell(rayless_server: RaylessServer):
    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SPELL, *args], env=rayless_server.env, cwd=cwd,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    return run


def get(server: RaylessServer, path: str, **params: object) -> dict:
    response = httpx.get(f"{server.url}{path}", params=params, timeout=30,
                         headers={"Authorization": f"Bearer {server.token}"})
    response.raise_for_status()
    return response.json()


def searches(server: RaylessServer) -> list[dict]:
    return get(server, "/api/hyper", archived=True)["searches"]


def run_count(server: RaylessServer) -> int:
    return get(server, "/api/runs", limit=1)["total"]


def test_python2_is_refused_before_anything_runs(spell, rayless_server: RaylessServer,
                                                tmp_path: Path) -> None:
    before = run_count(rayless_server)
    (tmp_path / "opts.yaml").write_text("python2: true\ncommand: python t.py\n")
    for args in (("run", "--python2", "python t.py"),
                 ("run", "--from-file", str(tmp_path / "opts.yaml"))):
        done = spell(*args, cwd=tmp_path)
        assert done.returncode == ERROR, (args, done.stderr)
        assert "Python 2 reached its end of life" in one_error_line(done)
    assert run_count(rayless_server) == before  # nothing created


@pytest.mark.parametrize("flag", ["-r", "--parallel-runs", "--parallel"])
def test_bayesian_takes_spells_parallel_runs(spell, rayless_server: RaylessServer,
                                             tmp_path: Path, flag: str) -> None:
    (tmp_path / "t.py").write_text("print(1)\n")
    done = spell("hyper", "bayesian", "-n", "4", flag, "3", "--metric", "acc",
                 "--param", "rate=0.1:1", "python t.py --rate :rate:", cwd=tmp_path)
    # No Ray behind this server: the search is recorded, then fails to start, in one line.
    assert done.returncode == ERROR and "Ray" in one_error_line(done)
    newest = max(searches(rayless_server), key=lambda s: s["id"])
    assert newest["kind"] == "bayesian" and newest["parallel"] == 3
    assert newest["status"] == "failed"


def test_describe_follow_of_an_ended_search_exits_for_its_outcome(
        spell, rayless_server: RaylessServer, tmp_path: Path) -> None:
    started = spell("hyper", "grid", "--follow", "--param", "x=1,2", "echo :x:", cwd=tmp_path)
    assert started.returncode == ERROR and "Ray" in one_error_line(started)  # never started
    failed = max(searches(rayless_server), key=lambda s: s["id"])
    done = spell("hyper", "describe", str(failed["id"]), "--follow")
    assert done.returncode == RUN_FAILED, done.stderr
    assert f"Search   {failed['id']} · grid · failed" in done.stdout
    assert f"search {failed['id']} failed: 0 of 0 trials complete" in done.stderr
    assert spell("hyper", "describe", str(failed["id"])).returncode == OK
    assert spell("hyper", "describe", "99999", "--follow").returncode == 5  # not found
    assert spell("hyper", "grid", "--follow", "-f", "echo").returncode == USAGE  # no -f


def test_spell_mount_paths_are_checked_at_submission(spell, rayless_server: RaylessServer,
                                                     tmp_path: Path) -> None:
    (tmp_path / "ckpt.pth").write_text("w\n")
    assert spell("upload", str(tmp_path / "ckpt.pth"), "--name", "compat-ckpt").returncode == OK
    before = run_count(rayless_server)
    for mounts, message in (
            (["-m", "uploads/compat-ckpt:/spell"], "mount under it, such as /spell/data"),
            (["-m", "uploads/compat-ckpt:/spell/ckpt", "-m", "uploads/compat-ckpt:ckpt"],
             "two mounts overlap at ckpt")):
        done = spell("run", *mounts, "echo hi", cwd=tmp_path)
        assert done.returncode == ERROR, done.stderr
        assert message in one_error_line(done)
    assert run_count(rayless_server) == before  # refused before a run was made

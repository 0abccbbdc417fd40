"""Spell's /spell folder end to end: Spell-style commands (`-m ...:/spell/checkpoints/...`,
writing /spell/out.txt) through the real CLI, server and Ray head. Where this machine lets
the runner make a mount namespace, /spell is each run's own folder; where it cannot (or
SPELLRAY_SPELL_FOLDER=off) the run's log says so and /spell/ mounts are still in the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellray.runner.spell_folder import prepare
from tests.helpers import Spell, wait_for

NAMESPACE = prepare(Path("/tmp"), "auto")
NOT_AVAILABLE = "/spell paths are not available to this run"
MOUNT = "uploads/ckpt.pth:/spell/checkpoints/ckpt.pth"


@pytest.fixture(scope="module")
def checkpoint(spell: Spell, tmp_path_factory: pytest.TempPathFactory) -> None:
    source = tmp_path_factory.mktemp("ckpt") / "ckpt.pth"
    source.write_text("weights\n")
    done = spell("upload", str(source))
    assert done.returncode == 0, done.stderr


def run_id_of(done) -> int:
    return int(done.stderr.split("run ")[1].split()[0])


def log_of(spell: Spell, run_id: int) -> str:
    return spell("logs", str(run_id)).stdout


def test_spell_is_each_concurrent_runs_own_folder(spell: Spell, project: Path,
                                                  checkpoint: None) -> None:
    command = ("pwd; cat /spell/checkpoints/ckpt.pth; echo $SPELLRAY_RUN_ID > /spell/out.txt; "
               "sleep 1; cat /spell/out.txt")
    if NAMESPACE.unavailable:  # this node cannot: the log says why, once
        done = spell("run", "-m", MOUNT, "pwd; cat checkpoints/ckpt.pth", cwd=project)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count(f"{NOT_AVAILABLE}: {NAMESPACE.unavailable}") == 1
        assert "weights" in done.stdout
        return
    runs = [spell.submit_background(command, "-m", MOUNT, cwd=project) for _ in range(2)]
    for run_id in runs:
        info = spell.wait_status(run_id, "complete", "failed")
        log = log_of(spell, run_id)
        assert info["status"] == "complete", log
        assert f"/spell\nweights\n{run_id}\n" in log and NOT_AVAILABLE not in log
        run_dir = spell.storage / "runs" / str(run_id)
        assert (run_dir / "out.txt").read_text() == f"{run_id}\n"  # an output like any other
        assert not (run_dir / "checkpoints").exists()  # the mount is not
    assert not Path("/spell/out.txt").exists()


def test_off_says_why_and_mounts_in_the_folder(spell: Spell, project: Path,
                                               checkpoint: None) -> None:
    done = spell("run", "-e", "SPELLRAY_SPELL_FOLDER=off", "-m", MOUNT,
                 "cat checkpoints/ckpt.pth > copy.txt; pwd", cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"{NOT_AVAILABLE}: turned off on this node "
                             "(SPELLRAY_SPELL_FOLDER=off)") == 1
    run_id = run_id_of(done)
    assert (spell.storage / "runs" / str(run_id) / "copy.txt").read_text() == "weights\n"


@pytest.mark.skipif(bool(NAMESPACE.unavailable), reason="no mount namespace on this node")
def test_spell_stop_reaches_the_command_in_its_namespace(spell: Spell, project: Path) -> None:
    run_id = spell.submit_background(
        "trap 'echo got TERM in $(pwd); echo saved > /spell/last.txt; exit 143' TERM; "
        "echo started; sleep 600 & wait", cwd=project)
    wait_for(lambda: "started" in log_of(spell, run_id), what="the command to start")
    assert spell("stop", str(run_id)).returncode == 0
    info = spell.wait_status(run_id, "stopped", "failed", "killed")
    assert info["status"] == "stopped"
    assert "got TERM in /spell" in log_of(spell, run_id)
    assert (spell.storage / "runs" / str(run_id) / "last.txt").read_text() == "saved\n"

"""--tensorboard-dir refused at submission (a real server, the real CLI, the SDKs): a PATH
that leaves the working folder, and a mount into the TensorBoard folder or around it. The
server checks, so the SDK and Spell's API get the same one line; no cluster is needed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from spellray.errors import InvalidInput
from tests.cli.test_cli import one_error_line
from tests.helpers import SPELL, RaylessServer


@pytest.fixture
def spell(rayless_server: RaylessServer, tmp_path: Path):
    storage = rayless_server.home / "storage" / "uploads" / "tb-data"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "x.txt").write_text("x")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SPELL, *args], env=rayless_server.env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    return run


@pytest.mark.parametrize(("options", "message"), [
    (["--tensorboard-dir", "../logs"], "leaves the run's working folder"),
    (["--tensorboard-dir", "tb/../../logs"], "leaves the run's working folder"),
    (["--tensorboard-dir", "/tmp/tb"], "must be under /spell/"),
    (["--tensorboard-dir", ".spell/tb"], "spellray's own folder"),
    (["--tensorboard-dir", "tb", "-m", "uploads/tb-data:tb/data"], "inside the TensorBoard"),
    (["--tensorboard-dir", "/spell/tb", "-m", "uploads/tb-data:tb"], "inside the TensorBoard"),
    (["--tensorboard-dir", "/spell/data/tb", "-m", "uploads/tb-data:/spell/data"],
     "inside the TensorBoard folder \\(or holds it\\)"),
    (["--tensorboard-dir", ".", "-m", "uploads/tb-data"], "inside the TensorBoard"),
])
def test_spell_run_refuses_with_one_line(spell, options: list[str], message: str) -> None:
    done = spell("run", *options, "true")
    assert done.returncode != 0
    line = one_error_line(done)
    assert "--tensorboard-dir" in line
    assert re.search(message, line), line


def test_every_trial_of_a_search_is_checked_before_it_starts(spell) -> None:
    done = spell("hyper", "grid", "--param", "x=1,2", "--tensorboard-dir", "../up", "echo :x:")
    assert done.returncode != 0
    assert "--tensorboard-dir ../up: the path leaves" in one_error_line(done)


def test_a_mount_outside_the_working_folder_is_no_overlap(spell, rayless_server) -> None:
    # Accepted by the checks (the run is made); it then fails only as no cluster is there.
    done = spell("run", "--tensorboard-dir", "/spell/./tb/", "-m", "uploads/tb-data:/mnt/tb",
                 "true")
    assert "--tensorboard-dir" not in done.stderr and "unreachable" in done.stderr
    from spellray.client import Client

    latest = Client(rayless_server.url, rayless_server.token).runs.list(1).runs[0]
    assert latest.status_reason and "not submitted" in latest.status_reason
    assert latest.tensorboard_dir == "tb"  # /spell/x is x of the working folder


def test_sdks_get_the_same_check(rayless_server: RaylessServer,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("SPELLRAY_")]:
        monkeypatch.delenv(name)
    for name, value in rayless_server.env.items():
        if name.startswith("SPELLRAY_"):
            monkeypatch.setenv(name, value)
    from spell.client import from_environment as spell_client
    from spellray.client import from_environment

    with pytest.raises(InvalidInput, match="--tensorboard-dir /etc: an absolute path"):
        from_environment().runs.new("true", code_dir=None, tensorboard_dir="/etc")
    with pytest.raises(InvalidInput, match=re.escape("--tensorboard-dir ../x: the path leaves")):
        spell_client().runs.new(command="true", tensorboard_directory="../x")

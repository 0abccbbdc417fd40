"""Spell's /spell folder on a node: mount paths under /spell/ land in the run's folder on
every node; where a private mount namespace can be made, /spell is the command's folder
(each run its own), and where it cannot, or SPELLRAY_SPELL_FOLDER=off, the log says so."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from spellray.runner.spell_folder import prepare
from spellray.runner.workdir import WorkDir
from spellray.storage.mounts import in_spell_folder
from spellray.storage.store import Storage
from tests.helpers import wait_for
from tests.runner.test_workdir import Lines

# Whether this machine lets the runner make the namespace (root, or user namespaces): the
# tests that need it say which path they took.
NAMESPACE = prepare(Path("/tmp"), "auto")


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    monkeypatch.setenv("SPELLRAY_HOME", str(tmp_path / "home"))
    store = Storage(str(tmp_path / "storage"))
    store.write_bytes("runs/414/ckpt.pth", b"weights\n")
    return store


def workdir(tmp_path: Path, storage: Storage, name: str = "run", run_id: int = 7
            ) -> tuple[WorkDir, Lines]:
    (tmp_path / name).mkdir()
    log = Lines()
    return WorkDir(tmp_path / name, storage, run_id, log), log


def test_spell_paths_are_places_in_the_working_folder() -> None:
    assert in_spell_folder("/spell/checkpoints/ckpt.pth") == "checkpoints/ckpt.pth"
    assert in_spell_folder("/spell/a/../b/") == "b"
    assert in_spell_folder("/spell") == "" and in_spell_folder("/spell/") == ""
    assert in_spell_folder("/spellbook/x") is None and in_spell_folder("/data") is None
    assert in_spell_folder("/spell/../etc") is None and in_spell_folder("checkpoints") is None


def test_off_mounts_spell_paths_in_the_folder_and_says_why_once(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPELLRAY_SPELL_FOLDER", "off")
    folder, log = workdir(tmp_path, storage)
    folder.mount([{"resource": "runs/414/ckpt.pth", "resolved": "runs/414/ckpt.pth",
                   "path": "/spell/checkpoints/ckpt.pth"}])
    assert folder.run("pwd; cat checkpoints/ckpt.pth; echo out > out.txt", {}) == 0
    assert f"{folder.path}\nweights\n" in log.text
    assert log.text.count("/spell paths are not available to this run: turned off on this "
                          "node (SPELLRAY_SPELL_FOLDER=off)") == 1
    assert folder.save_outputs() == ["out.txt"]  # the mount is not an output
    assert folder.outside_mounts == []


def test_mounting_on_spell_itself_is_a_clear_error(storage: Storage, tmp_path: Path) -> None:
    folder, _ = workdir(tmp_path, storage)
    with pytest.raises(Exception, match="mount under it, such as /spell/data"):
        folder.mount([{"resource": "runs/414", "resolved": "runs/414", "path": "/spell"}])


def test_auto_makes_spell_each_runs_own_folder(storage: Storage, tmp_path: Path) -> None:
    first, first_log = workdir(tmp_path, storage, "first", 1)
    second, second_log = workdir(tmp_path, storage, "second", 2)
    for folder in (first, second):
        folder.mount([{"resource": "runs/414/ckpt.pth", "resolved": "runs/414/ckpt.pth",
                       "path": "/spell/checkpoints/ckpt.pth"}])
    if NAMESPACE.unavailable:  # this node cannot: the log says why, and the folder is used
        assert first.run("pwd", {}) == 0
        assert "/spell paths are not available to this run: " \
               f"{NAMESPACE.unavailable}" in first_log.text
        assert f"{first.path}\n" in first_log.text
        return
    # Two runs at once, each writing /spell/out.txt: both have written before either
    # reads it back, and each reads its own.
    script = ("pwd; cat /spell/checkpoints/ckpt.pth; echo {n} > /spell/out.txt; "
              "touch /spell/ready; while [ ! -e /spell/go ]; do sleep 0.05; done; "
              "cat /spell/out.txt")
    codes: dict[int, int] = {}

    def run(n: int, folder: WorkDir) -> None:
        codes[n] = folder.run(script.format(n=n), {})

    threads = [threading.Thread(target=run, args=(1, first)),
               threading.Thread(target=run, args=(2, second))]
    for thread in threads:
        thread.start()
    wait_for(lambda: all((f.path / "ready").exists() for f in (first, second)), 60,
             what="both runs to write /spell/out.txt")
    for folder in (first, second):
        (folder.path / "go").touch()
    for thread in threads:
        thread.join(120)
    assert codes == {1: 0, 2: 0}
    assert first_log.text.endswith("/spell\nweights\n1\n")
    assert second_log.text.endswith("/spell\nweights\n2\n")
    assert "not available" not in first_log.text + second_log.text
    assert (first.path / "out.txt").read_text() == "1\n"
    assert (second.path / "out.txt").read_text() == "2\n"
    assert "out.txt" in first.save_outputs()
    assert storage.read_bytes("runs/1/out.txt") == b"1\n"
    assert not Path("/spell/out.txt").exists()  # nothing landed on the node's /spell


@pytest.mark.skipif(bool(NAMESPACE.unavailable), reason="no mount namespace on this node")
def test_sigterm_reaches_the_command_through_the_namespace(
        storage: Storage, tmp_path: Path) -> None:
    folder, _ = workdir(tmp_path, storage)
    relayed: list[bytes] = []

    def relay(line: bytes) -> None:
        relayed.append(line)
        if line == b"started\n":
            folder.command.stop()

    folder.log.write = relay  # type: ignore[method-assign]
    code = folder.run("trap 'echo got TERM in $(pwd); exit 143' TERM; echo started; "
                      "sleep 600 & wait", {})
    assert code == 143 and folder.command.ended()
    assert relayed == [b"started\n", b"got TERM in /spell\n"]


@pytest.mark.skipif(bool(NAMESPACE.unavailable), reason="no mount namespace on this node")
def test_sigkill_reaches_a_command_that_ignores_sigterm(storage: Storage,
                                                        tmp_path: Path) -> None:
    folder, _ = workdir(tmp_path, storage)

    def relay(line: bytes) -> None:
        if line == b"started\n":
            folder.command.kill()  # what the runner does once the grace is over

    folder.log.write = relay  # type: ignore[method-assign]
    code = folder.run("trap '' TERM; echo started; sleep 600", {})
    assert code == 128 + 9 and folder.command.ended()

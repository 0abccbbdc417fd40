"""A run's working-folder steps without Ray or a server: a real code package in a local
storage folder, real mounts, a real command, and the outputs it made."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellray.runner.command import Command
from spellray.runner.workdir import WorkDir
from spellray.storage.code_package import package_folder
from spellray.storage.store import Storage


class Lines:
    """The log the steps write to, kept as text."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, data: bytes) -> None:
        self.text += data.decode()

    def line(self, text: str) -> None:
        self.text += f"{text}\n"


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    monkeypatch.setenv("SPELLRAY_HOME", str(tmp_path / "home"))  # the node cache of mounts
    store = Storage(str(tmp_path / "storage"))
    store.write_bytes("uploads/data/x.txt", b"mounted\n")
    return store


def test_code_mounts_command_and_outputs(storage: Storage, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "train.sh").write_text("echo training with $GREETING\n")
    (project / "lib" / "kept.txt").write_text("unchanged\n")
    (project / "notes.txt").write_text("first\n")
    package = package_folder(project, limit_mb=10)
    storage.write_bytes(f"code/{package.sha256}.zip", package.data)
    outside = tmp_path / "outside"
    record = {"code": {"sha256": package.sha256}, "mounts": [
        {"resource": "uploads/data", "resolved": "uploads/data", "path": "data"},
        {"resource": "uploads/data", "resolved": "uploads/data", "path": str(outside)}]}
    log = Lines()
    (tmp_path / "run").mkdir()
    workdir = WorkDir(tmp_path / "run", storage, 7, log)

    workdir.fetch_code(record)
    workdir.mount(record["mounts"])
    code = workdir.run(f"bash train.sh && cat data/x.txt {outside}/x.txt && "
                       "echo second >> notes.txt && mkdir model && echo w > model/w.txt && "
                       "echo scribble > data/y.txt", {"GREETING": "hello"})

    assert code == 0
    assert "training with hello\nmounted\nmounted\n" in log.text
    assert "spellray: mounted uploads/data at data (1 files" in log.text
    assert [m["path"] for m in workdir.mounted] == ["data", str(outside)]
    # New and changed files only: not the unchanged code, not what is in a mount.
    assert workdir.save_outputs() == ["model/w.txt", "notes.txt"]
    assert storage.read_bytes("runs/7/notes.txt") == b"first\nsecond\n"
    assert workdir.save_outputs("rank-1/") == ["rank-1/model/w.txt", "rank-1/notes.txt"]
    assert storage.read_bytes("runs/7/rank-1/model/w.txt") == b"w\n"
    workdir.metrics_file.touch()

    workdir.cleanup()
    assert not workdir.path.exists() and not outside.exists()
    assert not workdir.metrics_file.exists()
    assert storage.read_bytes("uploads/data/x.txt") == b"mounted\n"  # mounts left it alone


def test_a_stopped_command_ends_with_sigterms_code(tmp_path: Path) -> None:
    command = Command()
    lines: list[bytes] = []

    def relay(line: bytes) -> None:
        lines.append(line)
        if line == b"started\n":
            command.stop()

    # The shell's trap shows it got SIGTERM; its `sleep` got it too, or it would not end.
    code = command.run("trap 'echo got TERM; exit 143' TERM; echo started; "
                       "sleep 600 & wait", tmp_path, {}, relay)
    assert code == 143 and command.ended()
    assert lines == [b"started\n", b"got TERM\n"]


def test_a_command_stopped_before_it_starts_does_not_run(tmp_path: Path) -> None:
    command = Command()
    command.stop()
    lines: list[bytes] = []
    code = command.run("sleep 600; echo ran", tmp_path, {}, lines.append)
    assert code == 128 + 15 and lines == []


def test_auto_resume_saves_outputs_as_it_goes_and_a_resume_starts_with_them(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run 7 checkpoints, and its checkpoint is in storage while its command still runs (its
    machine could go at any moment); run 8 resumes it: its folder starts with run 7's
    outputs (not its .spell/ files nor a rank's), and carries them on as its own."""
    monkeypatch.setenv("SPELLRAY_OUTPUT_SYNC_SECONDS", "0.1")
    storage.write_bytes("runs/7/.spell/log", b"run 7's log\n")
    storage.write_bytes("runs/7/rank-1/other.txt", b"rank 1's\n")
    (tmp_path / "a").mkdir()
    first = WorkDir(tmp_path / "a", storage, 7, Lines())
    first.sync_outputs = True
    # The command waits until its checkpoint is in storage: saved while it runs, not at its
    # end (it gives up, exit 9, if that never comes).
    saved = storage.local_path("runs/7/ckpt/step.txt")
    assert first.run(f"mkdir ckpt && echo 3 > ckpt/step.txt && for i in $(seq 2000); do "
                     f"[ -s {saved} ] && exit 0; sleep 0.05; done; exit 9", {}) == 0
    first.live.close(final=False)
    assert storage.read_bytes("runs/7/ckpt/step.txt") == b"3\n"

    (tmp_path / "b").mkdir()
    log = Lines()
    second = WorkDir(tmp_path / "b", storage, 8, log)
    second.restore_outputs(7)
    assert "resumed from run 7: 1 saved output file(s)" in log.text
    assert not (tmp_path / "b" / ".spell").exists() and not (tmp_path / "b" / "rank-1").exists()
    second.sync_outputs = True
    assert second.run("cat ckpt/step.txt && echo done > result.txt", {}) == 0
    assert "3\n" in log.text
    assert sorted(second.save_outputs()) == ["ckpt/step.txt", "result.txt"]
    assert storage.read_bytes("runs/8/ckpt/step.txt") == b"3\n"


def test_a_distributed_runs_rank_saves_as_it_goes_and_resumes_with_its_own_files(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 of run 7 saves under runs/7/rank-1/ while its command runs; rank 1 of run 8,
    which resumes run 7, starts with those files (not rank 0's nor rank 2's) and saves them
    as its own rank 1's."""
    monkeypatch.setenv("SPELLRAY_OUTPUT_SYNC_SECONDS", "0.1")
    storage.write_bytes("runs/7/rank0.txt", b"rank 0's\n")
    storage.write_bytes("runs/7/rank-2/other.txt", b"rank 2's\n")
    (tmp_path / "a").mkdir()
    first = WorkDir(tmp_path / "a", storage, 7, Lines())
    first.output_prefix, first.sync_outputs = "rank-1/", True
    saved = storage.local_path("runs/7/rank-1/shard.txt")
    assert first.run(f"echo 5 > shard.txt && for i in $(seq 2000); do "
                     f"[ -s {saved} ] && exit 0; sleep 0.05; done; exit 9", {}) == 0
    first.live.close(final=False)

    (tmp_path / "b").mkdir()
    log = Lines()
    second = WorkDir(tmp_path / "b", storage, 8, log)
    second.output_prefix, second.sync_outputs = "rank-1/", True
    second.restore_outputs(7)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["shard.txt"]
    assert "resumed from run 7: 1 saved output file(s)" in log.text
    assert second.run("cat shard.txt", {}) == 0 and "5\n" in log.text
    assert second.save_outputs("rank-1/") == ["rank-1/shard.txt"]
    assert storage.read_bytes("runs/8/rank-1/shard.txt") == b"5\n"

"""runner/live_sync.py against real stores (a local folder, moto's S3 server) and real
TensorBoard event files written by TensorBoard's own writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spellray.runner.command import Command
from spellray.runner.live_sync import LiveSync
from spellray.runner.workdir import WorkDir
from spellray.storage.store import Storage
from tests.helpers import wait_for
from tests.runner.test_workdir import Lines
from tests.s3 import MotoS3


def write_scalars(folder: Path, steps: range) -> Path:
    """Scalars ``loss`` at ``steps`` in a new event file of ``folder`` (TensorBoard's writer)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    for step in steps:
        writer.add_event(Event(step=step, wall_time=1.0 + step, summary=Summary(
            value=[Summary.Value(tag="loss", simple_value=1.0 / (step + 1))])))
    writer.close()
    return Path(writer.get_logdir()) / os.listdir(writer.get_logdir())[0]


def stored_steps(storage: Storage, prefix: str, tmp: Path) -> list[int]:
    """The ``loss`` steps TensorBoard reads from the event files stored under ``prefix``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    local = tmp / "read-back"
    for entry in storage.list(prefix, recursive=True):
        if not entry.is_dir:
            storage.download_file(entry.path, local / entry.path[len(prefix) + 1:])
    accumulator = EventAccumulator(str(local))
    accumulator.Reload()
    return [s.step for s in accumulator.Scalars("loss")]


@pytest.fixture
def local(tmp_path: Path) -> Storage:
    return Storage(str(tmp_path / "storage"))


def test_copies_new_and_grown_files_once_each(local: Storage, tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "tb").mkdir(parents=True)
    (root / "tb" / "code.txt").write_text("there before")  # the run's code: not copied
    (root / "elsewhere.txt").write_text("not in the folder")
    sync = LiveSync(root, "tb", local, "runs/5", interval=3600)
    sync.start()

    (root / "tb" / "sub").mkdir()
    (root / "tb" / "sub" / "a.log").write_text("one\n")
    os.symlink(root / "elsewhere.txt", root / "tb" / "link.txt")  # a mount's file: never
    assert sync.sync() == ["tb/sub/a.log"]
    assert sync.sync() == []  # nothing changed: nothing copied
    with (root / "tb" / "sub" / "a.log").open("a") as f:
        f.write("two\n")
    assert sync.sync() == ["tb/sub/a.log"]
    assert local.read_bytes("runs/5/tb/sub/a.log") == b"one\ntwo\n"
    (root / "tb" / "code.txt").write_text("changed by the run")
    saved = sync.close()
    assert set(saved) == {"tb/sub/a.log", "tb/code.txt"}
    assert local.read_bytes("runs/5/tb/code.txt") == b"changed by the run"
    assert not local.exists("runs/5/elsewhere.txt") and not local.exists("runs/5/tb/link.txt")
    assert sync.is_saved("tb/sub/a.log")


def test_the_thread_copies_a_growing_event_file(local: Storage, tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    sync = LiveSync(root, "logs", local, "runs/6", interval=0.2)
    sync.start()
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(root / "logs"))
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    def add(step: int) -> None:
        writer.add_event(Event(step=step, summary=Summary(
            value=[Summary.Value(tag="loss", simple_value=float(step))])))
        writer.flush()

    add(0)
    name = os.listdir(root / "logs")[0]
    first = wait_for(lambda: local.size(f"runs/6/logs/{name}"), what="the first copy")
    for step in range(1, 20):
        add(step)
    wait_for(lambda: (local.size(f"runs/6/logs/{name}") or 0) > first, what="a grown copy")
    writer.close()
    sync.close()
    assert stored_steps(local, "runs/6/logs", tmp_path) == list(range(20))


def test_s3_copies_are_whole_event_files(moto_s3: MotoS3, tmp_path: Path) -> None:
    settings = moto_s3.settings(moto_s3.create_bucket(), "spell")
    s3 = Storage(settings.resolved_storage_uri(), settings)
    root = tmp_path / "run"
    root.mkdir()
    sync = LiveSync(root, "", s3, "runs/7", interval=3600)  # "": the whole working folder
    sync.start()
    write_scalars(root / "tb", range(0, 5))
    assert len(sync.sync()) == 1
    assert stored_steps(s3, "runs/7/tb", tmp_path / "first") == list(range(5))
    write_scalars(root / "tb", range(5, 9))  # a second event file, as a restarted writer
    sync.close()
    assert stored_steps(s3, "runs/7/tb", tmp_path / "last") == list(range(9))


def test_storage_errors_are_said_once_and_retried(tmp_path: Path) -> None:
    blocked = tmp_path / "storage"
    local = Storage(str(blocked))
    root = tmp_path / "run"
    (root / "tb").mkdir(parents=True)
    lines = Lines()
    sync = LiveSync(root, "tb", local, "runs/8", interval=3600, on_error=lines.line)
    sync.start()
    (root / "tb" / "x").write_text("x")
    (blocked / "runs").write_text("a file where a folder must be")
    assert sync.sync() == [] and sync.sync() == []
    assert lines.text.count("live sync of tb/x failed, will retry") == 1
    (blocked / "runs").unlink()
    assert sync.sync() == ["tb/x"]
    sync.close(final=False)


def test_outputs_reuse_what_live_sync_saved(local: Storage, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPELLRAY_LIVE_SYNC_SECONDS", "3600")  # only the last pass
    (tmp_path / "run").mkdir()
    workdir = WorkDir(tmp_path / "run", local, 9, Lines())
    workdir.command = Command()
    workdir.live_folder = "tb"
    assert workdir.run("mkdir tb && echo e > tb/events && echo m > model.txt", {}) == 0
    assert workdir.live is not None
    workdir.live.close()  # the last pass, as save_outputs makes it
    stored = local.local_path("runs/9/tb/events")
    assert stored is not None
    before = stored.stat()
    assert workdir.save_outputs() == ["model.txt", "tb/events"]
    after = stored.stat()
    # Not written again: the same file (inode) with the same modification time.
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert local.read_bytes("runs/9/model.txt") == b"m\n"
    workdir.cleanup()


def test_rank_0_of_a_distributed_run_saves_the_folder(local: Storage,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from spellray.runner.launch.rank_process import RankProcess

    monkeypatch.setenv("SPELLRAY_SPELL_FOLDER", "off")
    record = {"id": 11, "tensorboard_dir": "tb"}
    ranks = [RankProcess(11, local.uri, record, rank) for rank in (0, 1)]
    assert ranks[0].workdir.live_folder == "tb" and ranks[1].workdir.live_folder is None
    for rank in ranks:
        rank.prepare()
        rank.start("mkdir tb && echo $RANK > tb/events", {"RANK": str(rank.rank)})
    wait_for(lambda: all(r.poll()[3] is not None for r in ranks), what="both ranks to end")
    assert ranks[0].workdir.live is not None and ranks[1].workdir.live is None
    assert ranks[0].save_outputs("") == ["tb/events"]
    assert ranks[1].save_outputs("rank-1/") == ["rank-1/tb/events"]
    assert local.read_bytes("runs/11/tb/events") == b"0\n"
    assert local.read_bytes("runs/11/rank-1/tb/events") == b"1\n"
    for rank in ranks:
        rank.cleanup()


def test_every_rank_of_a_resumed_run_starts_with_its_own_files_and_saves_as_it_goes(
        local: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    from spellray.runner.launch.rank_process import RankProcess

    monkeypatch.setenv("SPELLRAY_SPELL_FOLDER", "off")
    local.write_bytes("runs/11/ckpt.txt", b"rank 0's\n")
    local.write_bytes("runs/11/rank-1/ckpt.txt", b"rank 1's\n")
    record = {"id": 12, "auto_resume": True, "resumed_from": 11}
    ranks = [RankProcess(12, local.uri, record, rank) for rank in (0, 1)]
    for rank in ranks:
        rank.prepare()
        rank.start("cat ckpt.txt > seen.txt", {})
    wait_for(lambda: all(r.poll()[3] is not None for r in ranks), what="both ranks to end")
    assert all(r.workdir.live is not None for r in ranks)  # each saved as it went
    assert sorted(ranks[1].save_outputs("rank-1/")) == ["rank-1/ckpt.txt", "rank-1/seen.txt"]
    assert local.read_bytes("runs/12/rank-1/seen.txt") == b"rank 1's\n"
    assert sorted(ranks[0].save_outputs("")) == ["ckpt.txt", "seen.txt"]
    assert local.read_bytes("runs/12/seen.txt") == b"rank 0's\n"
    for rank in ranks:
        rank.cleanup()

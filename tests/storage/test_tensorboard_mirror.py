"""TensorBoard's mirror of a run's folder in storage (server/tensorboard/mirror.py), on local
storage and on a real S3 endpoint alike: new files whole, grown ones by their new bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellray.server.tensorboard.mirror import mirror_folder
from spellray.storage.store import Storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "s3":
        return request.getfixturevalue("s3")
    return Storage(str(tmp_path / "storage"))


def test_the_mirror_follows_the_folder(storage: Storage, tmp_path: Path) -> None:
    source, dest = "runs/7/logs", tmp_path / "mirror" / "7"
    storage.write_bytes(f"{source}/events.out.tfevents.1", b"first")
    storage.write_bytes(f"{source}/train/events.out.tfevents.2", b"abc")
    storage.write_bytes("runs/7/other.txt", b"not in the folder")
    assert mirror_folder(storage, source, dest) == len(b"first") + len(b"abc")
    assert (dest / "events.out.tfevents.1").read_bytes() == b"first"
    assert (dest / "train" / "events.out.tfevents.2").read_bytes() == b"abc"
    assert not (dest.parent / "other.txt").exists()
    assert sorted(p.name for p in dest.rglob("*")) == [
        "events.out.tfevents.1", "events.out.tfevents.2", "train"]  # no temp files left

    assert mirror_folder(storage, source, dest) == 0  # nothing changed, nothing copied
    # An event file grows: only its new bytes are copied, appended (TensorBoard reads on).
    storage.write_bytes(f"{source}/events.out.tfevents.1", b"first, then more")
    assert mirror_folder(storage, source, dest) == len(b", then more")
    assert (dest / "events.out.tfevents.1").read_bytes() == b"first, then more"
    # A file rewritten shorter is fetched whole again.
    storage.write_bytes(f"{source}/train/events.out.tfevents.2", b"z")
    assert mirror_folder(storage, source, dest) == 1
    assert (dest / "train" / "events.out.tfevents.2").read_bytes() == b"z"


def test_a_folder_not_there_yet_mirrors_nothing(storage: Storage, tmp_path: Path) -> None:
    assert mirror_folder(storage, "runs/8/logs", tmp_path / "mirror" / "8") == 0

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spellray.errors import Conflict, NotFound, UnsafePath
from spellray.storage.paths import clean_resource_path
from spellray.storage.store import Storage


@pytest.mark.parametrize("path", [
    "../etc/passwd", "runs/../../x", "runs/1/../../..", "/etc/passwd", "~/x", "runs\\1",
    "runs/%2e%2e/x", "runs%2f..%2fx", "runs/%2E%2E", "runs/%00", "runs/\x00x", "runs/\nx",
    "runs/%252e%252e",
])
def test_escaping_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        clean_resource_path(path)


@pytest.mark.parametrize(("path", "clean"), [
    ("runs/1/model", "runs/1/model"), ("runs//1/./model/", "runs/1/model"), ("", ""),
    (".", ""), ("uploads/a b.txt", "uploads/a b.txt"), ("runs/1/..hidden", "runs/1/..hidden"),
])
def test_safe_paths_are_normalized(path: str, clean: str) -> None:
    assert clean_resource_path(path) == clean


def test_symlink_out_of_local_storage_is_refused(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "root"))
    secret = tmp_path / "secret.txt"
    secret.write_text("nope")
    (tmp_path / "root" / "runs").mkdir()
    os.symlink(secret, tmp_path / "root" / "runs" / "link")
    os.symlink(tmp_path, tmp_path / "root" / "runs" / "dirlink")
    with pytest.raises(UnsafePath):
        storage.read_bytes("runs/link")
    with pytest.raises(UnsafePath):
        storage.read_bytes("runs/dirlink/secret.txt")
    with pytest.raises(UnsafePath):
        storage.write_bytes("runs/dirlink/new.txt", b"x")
    assert not (tmp_path / "new.txt").exists()


def test_local_storage_round_trip(tmp_path: Path) -> None:
    storage = Storage(f"file://{tmp_path / 'root'}")
    storage.write_bytes("runs/1/.spell/log", b"one\n")
    with storage.open_append("runs/1/.spell/log") as f:
        f.write(b"two\n")
    assert storage.read_bytes("runs/1/.spell/log") == b"one\ntwo\n"
    assert storage.read_bytes("runs/1/.spell/log", offset=4) == b"two\n"
    assert storage.size("runs/1/.spell/log") == 8 and storage.size("runs/1") is None
    assert [e.path for e in storage.list("runs", recursive=True)] == [
        "runs/1", "runs/1/.spell", "runs/1/.spell/log"]
    with pytest.raises(NotFound):
        storage.read_bytes("runs/2/x")
    with pytest.raises(UnsafePath):
        storage.delete("")
    storage.delete("runs/1")
    assert not storage.exists("runs/1")


def test_a_file_or_folder_in_the_way_is_a_conflict(tmp_path: Path) -> None:
    """Found by the API fuzzer (tests/security): an upload over a file's name as a folder
    (or a folder's as a file) was a FileExistsError, a 500."""
    storage = Storage(str(tmp_path / "root"))
    storage.write_bytes("uploads/a", b"file")
    storage.write_bytes("uploads/d/x", b"in a folder")
    for path in ("uploads/a/b", "uploads/d"):
        with pytest.raises(Conflict), storage.open_output(path) as out:
            out.write(b"never")
    assert storage.read_bytes("uploads/a") == b"file"
    assert sorted(p.name for p in (tmp_path / "root" / "uploads").rglob("*")) == ["a", "d", "x"]


def test_a_listing_shows_no_symlink_out_of_storage_nor_a_dangling_one(tmp_path: Path) -> None:
    """Found by the path fuzzer (tests/security): a symlink to nothing made `spell ls` a 500,
    and one out of storage showed the outside file's size."""
    root = tmp_path / "root"
    storage = Storage(str(root))
    storage.write_bytes("uploads/u/kept.txt", b"kept")
    (tmp_path / "secret.txt").write_text("secret")
    links = root / "uploads" / "u"
    (links / "out").symlink_to(tmp_path / "secret.txt")
    (links / "outdir").symlink_to(tmp_path)
    (links / "gone").symlink_to(tmp_path / "nothing")
    (links / "in").symlink_to(links / "kept.txt")
    for recursive in (False, True):
        listed = [e.path for e in storage.list("uploads/u", recursive=recursive)]
        assert listed == ["uploads/u/in", "uploads/u/kept.txt"], listed

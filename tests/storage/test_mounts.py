"""Mounting storage resources: symlinks to local storage, or to the node cache for S3."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from spellray.errors import InvalidInput, NotFound, UnsafePath
from spellray.storage.cache import NodeCache
from spellray.storage.mounts import materialize
from spellray.storage.store import Storage
from tests.s3 import MotoS3

MODEL = {"model/weights.bin": b"w" * 5000, "model/config.json": b'{"layers": 3}',
         "model/sub/vocab.txt": b"a\nb\nc\n"}


def fill(storage: Storage, prefix: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        storage.write_bytes(f"{prefix}/{rel}", data)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cache(tmp_path: Path) -> NodeCache:
    return NodeCache(tmp_path / "cache", limit_bytes=1 << 30)


# -- local storage ----------------------------------------------------------------------------
@pytest.fixture
def local(tmp_path: Path) -> Storage:
    return Storage(str(tmp_path / "storage"))


def test_local_mount_links_every_file_without_copying(local: Storage, cache: NodeCache,
                                                      tmp_path: Path) -> None:
    fill(local, "runs/3", MODEL)
    dest = tmp_path / "work" / "model"
    result = materialize(local, "runs/3/model", dest, cache)

    expected = {k.removeprefix("model/"): v for k, v in MODEL.items()}
    assert tree(dest) == expected
    assert (result.files, result.bytes, result.bytes_downloaded) == (
        3, sum(map(len, MODEL.values())), 0)
    assert result.resource == "runs/3/model" and result.dest == dest
    # Real folders, and each file a symlink to the storage file itself: no copy.
    assert dest.is_dir() and not dest.is_symlink()
    assert (dest / "sub").is_dir() and not (dest / "sub").is_symlink()
    for rel in expected:
        link = dest / rel
        assert link.is_symlink()
        assert link.resolve() == local.local_path(f"runs/3/model/{rel}").resolve()
    assert list(cache.objects.iterdir()) == []


def test_new_files_in_a_local_mount_stay_out_of_storage(local: Storage, cache: NodeCache,
                                                        tmp_path: Path) -> None:
    fill(local, "runs/3", MODEL)
    dest = tmp_path / "work" / "model"
    materialize(local, "runs/3/model", dest, cache)
    (dest / "new.txt").write_text("made by the run")
    (dest / "sub" / "more.txt").write_text("also")
    assert not local.exists("runs/3/model/new.txt")
    assert not local.exists("runs/3/model/sub/more.txt")
    assert sorted(e.path for e in local.list("runs/3/model", recursive=True)) == [
        "runs/3/model/config.json", "runs/3/model/sub", "runs/3/model/sub/vocab.txt",
        "runs/3/model/weights.bin"]


def test_local_single_file_mount_is_one_symlink(local: Storage, cache: NodeCache,
                                                tmp_path: Path) -> None:
    fill(local, "uploads/x", {"data.csv": b"1,2\n"})
    dest = tmp_path / "work" / "data.csv"
    result = materialize(local, "uploads/x/data.csv", dest, cache)
    assert dest.is_symlink() and dest.read_bytes() == b"1,2\n"
    assert (result.files, result.bytes) == (1, 4)


def test_missing_resource_is_not_found(local: Storage, cache: NodeCache,
                                       tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="cannot mount uploads/none: it does not exist"):
        materialize(local, "uploads/none", tmp_path / "m", cache)
    assert not (tmp_path / "m").exists()
    with pytest.raises(UnsafePath):
        materialize(local, "../outside", tmp_path / "m", cache)


def test_dest_must_be_absent_or_an_empty_folder(local: Storage, cache: NodeCache,
                                                tmp_path: Path) -> None:
    fill(local, "runs/3", MODEL)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidInput, match="exists and is not empty"):
        materialize(local, "runs/3/model", busy, cache)
    assert tree(busy) == {"mine.txt": b"keep me"}

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(InvalidInput, match="a file is there already"):
        materialize(local, "runs/3/model", a_file, cache)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert materialize(local, "runs/3/model", empty, cache).files == 3


def test_unwritable_dest_says_use_a_relative_path(local: Storage, cache: NodeCache) -> None:
    fill(local, "runs/3", MODEL)
    # /sys refuses new entries even to root.
    with pytest.raises(InvalidInput,
                       match="permission denied; use a relative path") as caught:
        materialize(local, "runs/3/model", Path("/sys/spellray-mount-test/model"), cache)
    assert "\n" not in caught.value.message


# -- S3 ---------------------------------------------------------------------------------------
def test_s3_mount_downloads_into_the_cache(s3: Storage, moto_s3: MotoS3, bucket: str,
                                           cache: NodeCache, tmp_path: Path) -> None:
    fill(s3, "runs/3", MODEL)
    dest = tmp_path / "work" / "model"
    result = materialize(s3, "runs/3/model", dest, cache)

    expected = {k.removeprefix("model/"): v for k, v in MODEL.items()}
    size = sum(map(len, MODEL.values()))
    assert tree(dest) == expected
    assert (result.files, result.bytes, result.bytes_downloaded) == (3, size, size)
    for rel in expected:
        assert (dest / rel).is_symlink()
        assert (dest / rel).resolve().parent == cache.objects
    # Each object body was fetched exactly once.
    assert sorted(moto_s3.object_gets(bucket, "spell/runs/3/")) == sorted(
        f"spell/runs/3/{k}" for k in MODEL)
    # The cached copies cannot be changed through the mount's symlinks by accident.
    assert all(not (p.stat().st_mode & 0o222) for p in cache.objects.iterdir())


def test_second_s3_mount_is_served_from_the_cache(s3: Storage, moto_s3: MotoS3, bucket: str,
                                                  cache: NodeCache, tmp_path: Path) -> None:
    fill(s3, "public/digits", MODEL)
    first = materialize(s3, "public/digits/model", tmp_path / "run1" / "model", cache)
    assert first.bytes_downloaded == first.bytes > 0
    gets = len(moto_s3.object_gets(bucket, "spell/public/digits/"))
    assert gets == 3

    second = materialize(s3, "public/digits/model", tmp_path / "run2" / "model", cache)
    assert second.bytes_downloaded == 0
    assert second.bytes == first.bytes and second.files == 3
    assert tree(tmp_path / "run2" / "model") == tree(tmp_path / "run1" / "model")
    # The server saw no new GET of any object body (only the listing).
    assert len(moto_s3.object_gets(bucket, "spell/public/digits/")) == gets


def test_rewritten_object_is_downloaded_again(s3: Storage, moto_s3: MotoS3, bucket: str,
                                              cache: NodeCache, tmp_path: Path) -> None:
    fill(s3, "uploads/data", {"a.txt": b"old", "b.txt": b"unchanged"})
    materialize(s3, "uploads/data", tmp_path / "run1" / "data", cache)
    # A different size, so the change is visible even within the same second (S3's
    # LastModified has one-second resolution; see Storage.identity).
    s3.write_bytes("uploads/data/a.txt", b"new and longer")
    gets_before = moto_s3.object_gets(bucket, "spell/uploads/data/")

    result = materialize(s3, "uploads/data", tmp_path / "run2" / "data", cache)
    assert tree(tmp_path / "run2" / "data") == {"a.txt": b"new and longer",
                                                "b.txt": b"unchanged"}
    assert result.bytes_downloaded == len(b"new and longer")
    new_gets = moto_s3.object_gets(bucket, "spell/uploads/data/")[len(gets_before):]
    assert new_gets == ["spell/uploads/data/a.txt"]
    # The first run's mount still shows what it mounted.
    assert (tmp_path / "run1" / "data" / "a.txt").read_bytes() == b"old"


def test_s3_single_file_and_missing_resource(s3: Storage, cache: NodeCache,
                                             tmp_path: Path) -> None:
    s3.write_bytes("uploads/one.bin", b"1" * 100)
    result = materialize(s3, "uploads/one.bin", tmp_path / "one.bin", cache)
    assert (tmp_path / "one.bin").is_symlink()
    assert (tmp_path / "one.bin").read_bytes() == b"1" * 100
    assert (result.files, result.bytes_downloaded) == (1, 100)
    with pytest.raises(NotFound, match="does not exist in storage"):
        materialize(s3, "uploads/none", tmp_path / "none", cache)
    assert not (tmp_path / "none").exists()


def test_eviction_keeps_the_cache_under_its_limit(s3: Storage, tmp_path: Path) -> None:
    cache = NodeCache(tmp_path / "cache", limit_bytes=2500)
    for name in "abcd":
        s3.write_bytes(f"uploads/e/{name}.bin", name.encode() * 1000)
    paths = {}
    for name in "ab":
        paths[name], downloaded = cache.fetch(s3, f"uploads/e/{name}.bin")
        assert downloaded == 1000
    # Explicit use times: file systems with coarse timestamps could otherwise tie.
    now = os.stat(paths["b"]).st_mtime
    os.utime(paths["a"], (now - 20, now - 20))
    os.utime(paths["b"], (now - 10, now - 10))
    paths["c"], downloaded = cache.fetch(s3, "uploads/e/c.bin")
    assert downloaded == 1000
    # a, b and c make 3000 bytes: the least recently used (a) went.
    assert not paths["a"].exists() and paths["b"].exists() and paths["c"].exists()
    assert cache.usage() == 2000

    # A hit makes b the most recently used, so c is the one to go next.
    old = os.stat(paths["c"]).st_mtime - 10
    os.utime(paths["b"], (old - 10, old - 10))
    os.utime(paths["c"], (old, old))
    assert cache.fetch(s3, "uploads/e/b.bin") == (paths["b"], 0)
    paths["d"], _ = cache.fetch(s3, "uploads/e/d.bin")
    assert paths["b"].exists() and paths["d"].exists() and not paths["c"].exists()
    assert cache.usage() <= 2500


def test_a_mount_never_evicts_its_own_files(s3: Storage, tmp_path: Path) -> None:
    cache = NodeCache(tmp_path / "cache", limit_bytes=1000)
    fill(s3, "uploads/big", {f"{i}.bin": bytes([i]) * 800 for i in range(3)})
    dest = tmp_path / "work" / "big"
    result = materialize(s3, "uploads/big", dest, cache)
    assert result.files == 3
    # Over the limit, but every link of the mount still resolves.
    assert tree(dest) == {f"{i}.bin": bytes([i]) * 800 for i in range(3)}


def test_concurrent_fetches_download_once(s3: Storage, moto_s3: MotoS3, bucket: str,
                                          cache: NodeCache) -> None:
    s3.write_bytes("public/shared.bin", b"s" * 200_000)
    results: list[tuple[Path, int]] = []
    start = threading.Barrier(6)

    def fetch() -> None:
        start.wait()
        results.append(cache.fetch(s3, "public/shared.bin"))

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({path for path, _ in results}) == 1
    assert sorted(n for _, n in results) == [0] * 5 + [200_000]
    assert moto_s3.object_gets(bucket, "spell/public/shared.bin") == ["spell/public/shared.bin"]


# moto before 5.2.5 answered CompleteMultipartUpload wrongly (getmoto/moto#10055): pinned.
def test_large_object_multipart_upload(s3: Storage, tmp_path: Path) -> None:
    # pyarrow switches to a multipart upload above ~10 MB.
    source = tmp_path / "big.bin"
    source.write_bytes(b"m" * (12 << 20))
    s3.upload_file(source, "runs/4/big.bin")
    assert s3.size("runs/4/big.bin") == 12 << 20

"""Storage on S3, spoken to over HTTP: moto's server stands in for the bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from spellray.errors import NotFound, UnsafePath
from spellray.settings import Settings, storage_env
from spellray.storage.store import Storage
from tests.s3 import MotoS3


@pytest.fixture
def storage(s3: Storage) -> Storage:
    return s3


def keys(moto_s3: MotoS3, bucket: str) -> list[str]:
    listed = moto_s3.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_write_read_lands_under_the_prefix(storage: Storage, moto_s3: MotoS3,
                                           bucket: str) -> None:
    storage.write_bytes("runs/1/model/w.txt", b"42")
    assert storage.read_bytes("runs/1/model/w.txt") == b"42"
    assert storage.read_bytes("runs/1/model/w.txt", offset=1) == b"2"
    # Really in the bucket, under the prefix, as seen by another S3 client.
    assert keys(moto_s3, bucket) == ["spell/runs/1/model/w.txt"]
    body = moto_s3.client().get_object(Bucket=bucket, Key="spell/runs/1/model/w.txt")["Body"]
    assert body.read() == b"42"


def test_exists_size_info(storage: Storage) -> None:
    storage.write_bytes("uploads/data/a.csv", b"x,y\n1,2\n")
    assert storage.exists("uploads/data/a.csv")
    assert storage.exists("uploads/data")  # an implicit folder: only a key prefix
    assert not storage.exists("uploads/nope")
    assert storage.size("uploads/data/a.csv") == 8
    assert storage.size("uploads/data") is None
    assert storage.size("uploads/nope") is None

    file = storage.info("uploads/data/a.csv")
    assert file is not None
    assert (file.path, file.size, file.is_dir) == ("uploads/data/a.csv", 8, False)
    assert file.mtime is not None and file.mtime > 0
    folder = storage.info("uploads/data/")
    assert folder is not None and folder.is_dir and folder.path == "uploads/data"
    assert storage.info("uploads/nope") is None
    root = storage.info("")
    assert root is not None and root.is_dir


def test_list_and_recursive_list(storage: Storage) -> None:
    storage.write_bytes("public/digits/train/0.txt", b"zero")
    storage.write_bytes("public/digits/train/1.txt", b"one")
    storage.write_bytes("public/digits/README", b"readme!")

    top = storage.list("public/digits")
    assert [(e.path, e.is_dir) for e in top] == [
        ("public/digits/README", False), ("public/digits/train", True)]

    deep = storage.list("public/digits", recursive=True)
    files = {e.path: e for e in deep if not e.is_dir}
    assert {p: e.size for p, e in files.items()} == {
        "public/digits/README": 7, "public/digits/train/0.txt": 4,
        "public/digits/train/1.txt": 3}
    # A mount builds its cache keys from the listing alone: every file has its mtime.
    assert all(e.mtime is not None for e in files.values())
    assert [e.path for e in deep if e.is_dir] == ["public/digits/train"]

    assert storage.list("public/none") == []
    assert storage.list("public/digits/README") == []  # a file, as on local storage


def test_open_output_and_open_input(storage: Storage) -> None:
    with storage.open_output("uploads/big/blob.bin") as out:
        for i in range(100):
            out.write(bytes([i]) * 1000)
    assert storage.size("uploads/big/blob.bin") == 100_000
    with storage.open_input("uploads/big/blob.bin") as f:
        assert f.read(1000) == b"\x00" * 1000
        assert len(f.read()) == 99_000
    with pytest.raises(NotFound):
        storage.open_input("uploads/big/none.bin")


def test_failed_open_output_leaves_no_object(storage: Storage) -> None:
    with pytest.raises(RuntimeError), storage.open_output("uploads/half/x.bin") as out:
        out.write(b"half of it")
        raise RuntimeError("client went away")
    assert not storage.exists("uploads/half/x.bin")


def test_download_and_upload_file(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * 3000)
    storage.upload_file(source, "runs/2/weights.bin")
    assert storage.size("runs/2/weights.bin") == 3000

    dest = tmp_path / "out" / "copy.bin"
    assert storage.download_file("runs/2/weights.bin", dest) == 3000
    assert dest.read_bytes() == b"w" * 3000
    with pytest.raises(NotFound):
        storage.download_file("runs/2/none.bin", tmp_path / "none.bin")
    with pytest.raises(NotFound):
        storage.read_bytes("runs/2/none.bin")


def test_delete_file_and_folder(storage: Storage) -> None:
    storage.write_bytes("uploads/d/a", b"a")
    storage.write_bytes("uploads/d/sub/b", b"b")
    storage.write_bytes("uploads/keep", b"k")
    storage.delete("uploads/d/a")
    assert not storage.exists("uploads/d/a")
    assert storage.exists("uploads/d/sub/b")
    storage.delete("uploads/d")
    assert not storage.exists("uploads/d/sub/b")
    assert [e.path for e in storage.list("uploads", recursive=True) if not e.is_dir] == [
        "uploads/keep"]
    with pytest.raises(UnsafePath):
        storage.delete("")


def test_identity_changes_when_rewritten(storage: Storage) -> None:
    storage.write_bytes("public/x.txt", b"one")
    first = storage.identity("public/x.txt")
    assert first[0].endswith("/spell/public/x.txt") and first[1] == 3
    entry = next(e for e in storage.list("public") if e.path == "public/x.txt")
    assert storage.entry_identity(entry) == first
    storage.write_bytes("public/x.txt", b"three")
    assert storage.identity("public/x.txt") != first
    with pytest.raises(NotFound):
        storage.identity("public")  # a folder has no identity


@pytest.mark.parametrize("path", ["../other", "runs/../../x", "/etc/passwd", "runs/%2e%2e/x",
                                  "runs\\x", "~/x"])
def test_path_escapes_are_refused(storage: Storage, moto_s3: MotoS3, bucket: str,
                                  path: str) -> None:
    for call in (lambda: storage.write_bytes(path, b"no"), lambda: storage.read_bytes(path),
                 lambda: storage.exists(path), lambda: storage.info(path),
                 lambda: storage.list(path), lambda: storage.delete(path),
                 lambda: storage.open_input(path)):
        with pytest.raises(UnsafePath):
            call()
    with pytest.raises(UnsafePath), storage.open_output(path):
        pass
    assert keys(moto_s3, bucket) == []


def test_settings_from_env_reach_the_same_bucket(moto_s3: MotoS3, bucket: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    env = moto_s3.env(bucket, "spell")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    # What the server forwards to a run is exactly what configured it.
    assert storage_env(settings) == env
    Storage(settings.resolved_storage_uri(), settings).write_bytes("runs/9/a", b"a")
    # No settings passed: the SPELLRAY_STORAGE_* environment is read all the same.
    assert Storage(env["SPELLRAY_STORAGE_URI"]).read_bytes("runs/9/a") == b"a"


def test_aws_variables_are_the_fallback(moto_s3: MotoS3, bucket: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = moto_s3.env(bucket, "spell")
    for name in env:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["SPELLRAY_STORAGE_ENDPOINT_URL"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", env["SPELLRAY_STORAGE_REGION"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env["SPELLRAY_STORAGE_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env["SPELLRAY_STORAGE_SECRET_ACCESS_KEY"])
    settings = Settings()
    assert storage_env(settings) == {}  # nothing spellray-specific to forward
    assert settings.resolved_storage_options() == {
        "endpoint_url": env["SPELLRAY_STORAGE_ENDPOINT_URL"], "region": "us-east-1",
        "access_key_id": "testing", "secret_access_key": "testing"}
    storage = Storage(f"s3://{bucket}/spell", settings)
    storage.write_bytes("uploads/a", b"via AWS_*")
    assert keys(moto_s3, bucket) == ["spell/uploads/a"]


def test_gz_names_are_bytes_not_codecs(storage: Storage, tmp_path: Path) -> None:
    # pyarrow guesses a codec from the name unless told not to: a .gz file must round-trip.
    data = b"\x1f\x8b not really gzip"
    storage.write_bytes("uploads/x/data.csv.gz", data)
    assert storage.read_bytes("uploads/x/data.csv.gz") == data
    with storage.open_input("uploads/x/data.csv.gz") as f:
        assert f.read() == data
    source = tmp_path / "real.gz"
    import gzip

    source.write_bytes(gzip.compress(b"hello"))
    storage.upload_file(source, "uploads/x/real.gz")
    assert storage.download_file("uploads/x/real.gz", tmp_path / "back.gz") == source.stat().st_size
    assert (tmp_path / "back.gz").read_bytes() == source.read_bytes()

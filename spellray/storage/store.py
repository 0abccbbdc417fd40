"""The storage tree (runs/, uploads/, public/, code/).

One small interface for the server, the runner and the CLI. Remote storage (s3://, gs://, any
URI pyarrow.fs opens) goes through pyarrow.fs. A local folder, the default, is served with
the standard library instead: importing pyarrow costs ~350 ms, and the runner pays start-up
time in every run. Every path goes through ``clean_resource_path`` first; local paths are
checked again after resolving symlinks.

On S3, folders are implicit: a folder exists while some key starts with ``folder/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from spellray.errors import Conflict, NotFound, StorageError, StorageUnreachable, UnsafePath
from spellray.storage.paths import clean_resource_path

if TYPE_CHECKING:
    from spellray.settings import Settings


# Bytes per read from an object store: pyarrow turns each read into one ranged GET, and
# boto3's transfers use 8 MiB.
READ_BUFFER = 16 << 20
# An upload up to this size is spooled in memory, a larger one in a temp file.
SPOOL_IN_MEMORY = 8 << 20
# How long an S3 write retries an unreachable endpoint unless SPELLRAY_STORAGE_RETRY_SECONDS
# says otherwise: long enough for an endpoint restart or a network blip.
RETRY_SECONDS = 120.0


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    is_dir: bool
    mtime: float | None


def _tmp_name(target: Path) -> Path:
    # Hidden and ending in .tmp, so listings skip it; unique per writer, so two writers of
    # one file never share a temp file.
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _s3_filesystem(uri: str, settings: Settings) -> tuple[Any, str]:
    """An S3FileSystem built from SPELLRAY_STORAGE_* (else AWS_*), and the bucket/prefix."""
    import pyarrow.fs as pafs

    parts = urlsplit(uri)
    root = f"{parts.netloc}{parts.path}".rstrip("/")
    opts = settings.resolved_storage_options()
    kwargs: dict[str, Any] = {
        "access_key": opts.get("access_key_id"),
        "secret_key": opts.get("secret_access_key"),
        "region": opts.get("region"),
    }
    endpoint = opts.get("endpoint_url", "")
    if endpoint:
        ep = urlsplit(endpoint)
        kwargs["scheme"] = ep.scheme
        kwargs["endpoint_override"] = ep.netloc
    elif not kwargs["region"]:
        # On AWS itself, ask the bucket where it lives rather than guessing us-east-1.
        with suppress(OSError):
            kwargs["region"] = pafs.resolve_s3_region(parts.netloc)
    return pafs.S3FileSystem(**kwargs), root


class Storage:
    def __init__(self, uri: str, settings: Settings | None = None) -> None:
        self.uri = uri
        self.local_root: Path | None = None
        self._fs: Any = None
        # Set for s3:// storage: every write goes through boto3's transfer manager
        # (_s3_upload); reads, listings and deletes through pyarrow.fs.
        self._s3_options: dict[str, str] | None = None
        # How long an S3 write retries an unreachable endpoint (storage_retry_seconds).
        # botocore's own retries give up within a second on refused connections, which
        # turned a 20 s endpoint restart during a run's output upload into a failed run
        # with lost outputs (tests/chaos/test_storage_faults.py). Bounded, so an endpoint
        # that stays down still ends the run, saying so.
        self._retry_seconds = 0.0
        self._boto3: Any = None
        self._boto3_lock = threading.Lock()
        if "://" not in uri or uri.startswith("file://"):
            self.local_root = Path(uri.removeprefix("file://")).expanduser().resolve()
            self.local_root.mkdir(parents=True, exist_ok=True)
            self.uri = str(self.local_root)
            return
        import pyarrow.fs as pafs

        try:
            if uri.startswith("s3://"):
                # Without settings, read SPELLRAY_STORAGE_* from the environment: a caller
                # that forgets to pass them still reaches the same endpoint as the server.
                if settings is None:
                    from spellray.settings import get_settings

                    settings = get_settings()
                self._fs, root = _s3_filesystem(uri, settings)
                self._s3_options = settings.resolved_storage_options()
                retry = settings.storage_retry_seconds
                self._retry_seconds = RETRY_SECONDS if retry is None else retry
            else:
                self._fs, root = pafs.FileSystem.from_uri(uri)
        except Exception as exc:  # pyarrow raises several types for bad URIs
            raise StorageError(f"cannot open storage {uri!r}: {exc}") from exc
        self._root = root.rstrip("/")
        if not self._root:
            raise StorageError(f"cannot open storage {uri!r}: name a bucket, s3://bucket/prefix")

    # -- paths ----------------------------------------------------------------------------
    def _local(self, path: str) -> Path:
        assert self.local_root is not None
        rel = clean_resource_path(path)
        full = self.local_root / rel
        real = full.resolve()
        if real != self.local_root and self.local_root not in real.parents:
            raise UnsafePath(f"the path {path!r} points outside storage (symlink)")
        return full

    def _remote(self, path: str) -> str:
        rel = clean_resource_path(path)
        return f"{self._root}/{rel}" if rel else self._root

    def local_path(self, path: str) -> Path | None:
        """The real file system path for local storage (mounts need no copy), else None."""
        return self._local(path) if self.local_root is not None else None

    def _rel(self, remote: str) -> str:
        return remote[len(self._root):].lstrip("/")

    def _entry(self, info: Any) -> Entry:
        import pyarrow.fs as pafs

        mtime = info.mtime.timestamp() if info.mtime else None
        is_dir = info.type == pafs.FileType.Directory
        return Entry(self._rel(info.path), 0 if is_dir else info.size or 0, is_dir, mtime)

    # -- reading --------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        if self.local_root is not None:
            return self._local(path).exists()
        import pyarrow.fs as pafs

        return self._fs.get_file_info(self._remote(path)).type != pafs.FileType.NotFound

    def size(self, path: str) -> int | None:
        """The size of a file, or None if there is no file at ``path``."""
        if self.local_root is not None:
            full = self._local(path)
            return full.stat().st_size if full.is_file() else None
        import pyarrow.fs as pafs

        info = self._fs.get_file_info(self._remote(path))
        return info.size if info.type == pafs.FileType.File else None

    def info(self, path: str) -> Entry | None:
        """The file or folder at ``path``, or None. On S3 a folder is any key prefix."""
        rel = clean_resource_path(path)
        if self.local_root is not None:
            full = self._local(rel)
            try:
                st = full.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            is_dir = full.is_dir()
            return Entry(rel, 0 if is_dir else st.st_size, is_dir, st.st_mtime)
        if not rel:
            return Entry("", 0, True, None)  # the bucket/prefix itself, even when empty
        import pyarrow.fs as pafs

        info = self._fs.get_file_info(self._remote(rel))
        return None if info.type == pafs.FileType.NotFound else self._entry(info)

    def identity(self, path: str) -> tuple[str, int, float | None]:
        """What identifies the current content of a file: (where, size, mtime).

        pyarrow.fs does not expose the ETag, so size plus mtime stands in for it: S3 sets
        LastModified on every PUT. Its resolution is one second, so a rewrite of the same
        size within the same second goes unnoticed.
        """
        entry = self.info(path)
        if entry is None or entry.is_dir:
            raise NotFound(f"{path} is not a file in storage")
        return self.entry_identity(entry)

    def entry_identity(self, entry: Entry) -> tuple[str, int, float | None]:
        """``identity`` from a listing entry, to spare one request per file."""
        if self.local_root is not None:
            return (str(self.local_root / entry.path), entry.size, entry.mtime)
        return (f"{self.uri.rstrip('/')}/{entry.path}", entry.size, entry.mtime)

    def open_input(self, path: str) -> IO[bytes]:
        """A readable binary stream of a file; close it (it is a context manager)."""
        try:
            if self.local_root is not None:
                return self._local(path).open("rb")
            # compression=None: pyarrow would otherwise inflate a file named *.gz on read.
            # A large buffer: each underlying read is one ranged GET on an object store.
            return self._fs.open_input_stream(self._remote(path), compression=None,
                                              buffer_size=READ_BUFFER)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"{path} does not exist in storage") from exc

    def read_bytes(self, path: str, offset: int = 0) -> bytes:
        try:
            if self.local_root is not None:
                with self._local(path).open("rb") as f:
                    f.seek(offset)
                    return f.read()
            with self._fs.open_input_file(self._remote(path)) as f:
                if offset:
                    f.seek(offset)
                return f.read()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound(f"{path} does not exist in storage") from exc

    def list(self, path: str, recursive: bool = False) -> list[Entry]:
        if self.local_root is not None:
            return self._list_local(path, recursive)
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self._remote(path), recursive=recursive,
                                     allow_not_found=True)
        try:
            infos = self._fs.get_file_info(selector)
        except (NotADirectoryError, FileNotFoundError):
            return []  # a file, as on local storage
        # One ListObjects call brings every file's size and LastModified, so a recursive
        # listing is all a mount needs to know.
        return sorted((self._entry(info) for info in infos), key=lambda e: e.path)

    def _list_local(self, path: str, recursive: bool) -> list[Entry]:
        assert self.local_root is not None
        base = self._local(path)
        if not base.is_dir():
            return []
        found = base.rglob("*") if recursive else base.iterdir()
        entries = []
        for item in found:
            if item.name.startswith(".") and item.name.endswith(".tmp"):
                continue  # a write in progress
            try:
                st = item.stat()
                real = item.resolve() if item.is_symlink() else None
            except OSError:
                continue  # gone since the listing began, or a symlink to nothing
            if real is not None and real != self.local_root and \
                    self.local_root not in real.parents:
                continue  # a symlink out of storage: never read, so not listed either
            rel = item.relative_to(self.local_root).as_posix()
            entries.append(Entry(rel, 0 if item.is_dir() else st.st_size, item.is_dir(),
                                 st.st_mtime))
        return sorted(entries, key=lambda e: e.path)

    def download_file(self, path: str, dest: Path) -> int:
        """Copy a file out of storage to ``dest``; return the number of bytes."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.open_input(path) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, READ_BUFFER)
            return out.tell()

    # -- writing --------------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole object; readers never see half of it (see ``open_output``)."""
        with self.open_output(path) as out:
            out.write(data)

    @contextmanager
    def open_output(self, path: str) -> Iterator[IO[bytes]]:
        """A writable binary stream for a whole file. Local storage writes a hidden temp file
        and renames it on a clean exit (removes it on an exception), so readers never see
        half a file; S3 creates the object when the stream closes (a failed write leaves
        no object)."""
        rel = clean_resource_path(path)
        if not rel:
            raise UnsafePath("cannot write to the storage root; name a file")
        if self._s3_options is not None:
            # Spool, then hand the file to boto3 (see _s3_upload). An exception before the
            # end uploads nothing: no half object.
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
                yield spool  # type: ignore[misc]
                spool.seek(0)
                self._s3_upload(spool, rel)
            return
        if self.local_root is None:
            remote = self._remote(rel)
            stream = self._fs.open_output_stream(remote, compression=None)
            try:
                yield stream
            except BaseException:
                # pyarrow cannot abort an upload: closing (even by the destructor) stores what
                # was written. Store it, then delete it, so no half file is left behind.
                with suppress(Exception):
                    stream.close()
                    self._fs.delete_file(remote)
                raise
            stream.close()
            return
        target = self._local(rel)
        # A file where a folder must go (or a folder where the file must go): the caller's
        # mistake, said as such, not a server error.
        in_the_way = Conflict(f"{rel} cannot be written: a file or folder of that name is in "
                              "the way; pick another path or remove it first")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise in_the_way from exc
        tmp = _tmp_name(target)
        try:
            with tmp.open("wb") as f:
                yield f
            try:
                os.replace(tmp, target)
            except (IsADirectoryError, NotADirectoryError) as exc:
                raise in_the_way from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _s3_upload(self, source: IO[bytes], path: str) -> None:
        """Write a whole S3 object with boto3's transfer manager, the tool users compare us
        with: one PUT for a small file, parallel 8 MiB parts for a large one. pyarrow's output
        stream sends each object aws-chunked after two HEAD requests, which on the benchmark
        cost half the throughput."""
        assert self._s3_options is not None
        with self._boto3_lock:  # boto3 builds clients unsafely across threads
            if self._boto3 is None:
                self._boto3 = self._make_boto3_client()
        from botocore.exceptions import ConnectionError as Unreachable
        from botocore.exceptions import HTTPClientError

        bucket, _, key = self._remote(path).partition("/")
        start, delay = source.tell(), 0.5
        deadline = time.monotonic() + self._retry_seconds
        while True:
            try:
                self._boto3.upload_fileobj(source, bucket, key)
                return
            except (Unreachable, HTTPClientError) as exc:  # refused, dropped, timed out
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageUnreachable(
                        f"storage unreachable: cannot write {path} to {self.uri} (retried "
                        f"{self._retry_seconds:g} s): {exc}") from exc
                # A multipart upload cut off is never completed, so no half object shows;
                # the retry starts the whole object again.
                time.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)
                source.seek(start)
            except Exception as exc:  # botocore's other errors: credentials, bucket
                raise StorageError(f"cannot write {path} to {self.uri}: {exc}") from exc

    def _make_boto3_client(self) -> Any:
        import boto3

        opts = self._s3_options or {}
        return boto3.session.Session().client(
            "s3", endpoint_url=opts.get("endpoint_url"),
            region_name=opts.get("region") or None,
            aws_access_key_id=opts.get("access_key_id") or None,
            aws_secret_access_key=opts.get("secret_access_key") or None)

    def upload_file(self, source: Path, path: str) -> None:
        if self._s3_options is not None:
            with source.open("rb") as f:
                self._s3_upload(f, path)
            return
        if self.local_root is not None:
            target = self._local(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return
        with source.open("rb") as src, self.open_output(path) as out:
            shutil.copyfileobj(src, out, READ_BUFFER)

    def open_append(self, path: str) -> IO[bytes] | None:
        """An append stream where storage is a local folder, else None (object stores
        cannot append; write the whole object instead)."""
        if self.local_root is None:
            return None
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.open("ab")

    def delete(self, path: str) -> None:
        if not clean_resource_path(path):
            raise UnsafePath("refusing to delete the storage root")
        if self.local_root is not None:
            target = self._local(path)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            return
        import pyarrow.fs as pafs

        info = self._fs.get_file_info(self._remote(path))
        if info.type == pafs.FileType.Directory:
            self._fs.delete_dir(self._remote(path))
        elif info.type == pafs.FileType.File:
            self._fs.delete_file(self._remote(path))

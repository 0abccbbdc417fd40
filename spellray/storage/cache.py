"""A node-local cache of remote storage files, shared by every run on the node.

A file is cached under the sha256 of its identity (where, size, mtime; see
``Storage.identity``), so a rewritten object gets a new key and is fetched again while the old
copy ages out. Runs on one node may fetch at the same time: a download goes to a temp file that
is renamed into place (readers never see half a file), and a per-key ``fcntl`` lock makes a
second run wait for the first download instead of repeating it. Each hit touches the file's
mtime, which is what least-recently-used eviction sorts by.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from spellray.errors import StorageError
from spellray.storage.store import Entry, Storage

CHUNK = 1 << 20
# Locks are striped over 256 files: enough to keep unrelated downloads apart, and the lock
# files never need deleting (deleting a lock file someone holds breaks flock).
_LOCK_STRIPES = 2


class NodeCache:
    def __init__(self, root: Path, limit_bytes: int) -> None:
        self.root = root.expanduser().resolve()
        self.limit_bytes = limit_bytes
        self.objects = self.root / "objects"
        self.locks = self.root / "locks"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.locks.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(identity: tuple[object, ...]) -> str:
        # repr, not json: a warm mount hashes every file, and json.dumps costs 10x more.
        return hashlib.sha256(repr(identity).encode()).hexdigest()

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        with (self.locks / f"{key[:_LOCK_STRIPES]}.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _hit(self, target: Path) -> bool:
        try:
            os.utime(target)  # most recently used now
        except FileNotFoundError:
            return False  # absent, or evicted a moment ago
        return True

    def lookup(self, storage: Storage, entry: Entry) -> Path | None:
        """The cached copy of a listed file, if there is one (and mark it used)."""
        target = self.objects / self.key(storage.entry_identity(entry))
        return target if self._hit(target) else None

    def fetch(self, storage: Storage, path: str, entry: Entry | None = None,
              evict: bool = True) -> tuple[Path, int]:
        """A local file with the bytes of storage file ``path``, and how many bytes were
        downloaded for it (0 on a hit). Pass the listing ``entry`` to spare a request;
        ``evict=False`` leaves eviction to the caller (``evict(keep=...)``) so a mount's
        own files are not evicted while it is being built."""
        identity = storage.entry_identity(entry) if entry else storage.identity(path)
        key = self.key(identity)
        target = self.objects / key
        if self._hit(target):
            return target, 0
        with self._locked(key):
            if self._hit(target):  # another run downloaded it while we waited
                return target, 0
            tmp = self.objects / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                with storage.open_input(path) as src, tmp.open("wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                    size = out.tell()
                if size != identity[1]:
                    # The object was rewritten between listing and download: these bytes
                    # do not belong under this key.
                    raise StorageError(f"{path} changed while it was downloaded; try again")
                tmp.chmod(0o444)  # runs reach it through symlinks; writing must not alter it
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        if evict:
            self.evict(keep=[target])
        return target, size

    def usage(self) -> int:
        return sum(e.stat().st_size for e in self._entries())

    def _entries(self) -> Iterator[os.DirEntry[str]]:
        with os.scandir(self.objects) as it:
            yield from (e for e in it if not e.name.startswith(".") and e.is_file())

    def evict(self, keep: Iterable[Path] = ()) -> int:
        """Delete least-recently-used files until the cache fits its limit; return the
        bytes freed. Files in ``keep`` (those just fetched for a mount) stay."""
        kept = {Path(p).name for p in keep}
        files = []
        for e in self._entries():
            with contextlib.suppress(FileNotFoundError):
                st = e.stat()
                files.append((st.st_mtime, st.st_size, e.path, e.name))
        total = sum(size for _, size, _, _ in files)
        freed = 0
        for _, size, path, name in sorted(files):
            if total <= self.limit_bytes:
                break
            if name in kept:
                continue
            with contextlib.suppress(FileNotFoundError):  # another run evicted it first
                os.unlink(path)
            total -= size
            freed += size
        return freed

"""Saving a folder of a run's working folder into storage while the run goes.

The runner's one way to save files before the run ends: a thread copies the folder's new and
grown files into storage every few seconds (SPELLRAY_LIVE_SYNC_SECONDS), and once more when
the command has ended. --tensorboard-dir uses it so TensorBoard shows a run as it trains;
saving outputs as a spot run goes can use it the same way.

A pass costs one stat per file when nothing changed: a file is copied again only when its
size or mtime differ from the last copy. Each copy is a whole file (object stores cannot
append) written through ``Storage.open_output``, so a reader never sees half a copy: a local
store renames a finished temp file into place, S3 and GCS make the object when it is whole.
A file still being written is copied as far as it was when the copy began; TensorBoard reads
such a prefix of an event file, and the next pass brings the rest.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spellray.storage.paths import join
from spellray.storage.store import READ_BUFFER, Storage


@dataclass(frozen=True)
class FileState:
    """What says a file changed, without reading it."""

    size: int
    mtime_ns: int


def file_state(path: Path) -> FileState:
    st = path.stat()
    return FileState(st.st_size, st.st_mtime_ns)


def _copy_prefix(source: Path, storage: Storage, dest: str) -> FileState:
    """Copy ``source`` as it is now (its first ``size`` bytes, ``size`` read when the copy
    begins) to ``dest``, whole; the state copied."""
    with source.open("rb") as src:
        st = os.fstat(src.fileno())
        left = st.st_size
        with storage.open_output(dest) as out:
            while left > 0:
                chunk = src.read(min(left, READ_BUFFER))
                if not chunk:  # truncated meanwhile: the next pass copies it again
                    break
                out.write(chunk)
                left -= len(chunk)
    return FileState(st.st_size, st.st_mtime_ns)


class LiveSync:
    """Copies ``root/folder``'s new and changed files to ``dest``/<path in root> in storage
    (``folder`` "" is ``root`` itself). Files there before ``start`` are copied only once
    they change, unless in ``fresh`` (a resumed run's restored outputs: the new run's own
    storage needs them too); symlinks (mounts' files) and folders in ``skip`` never are."""

    def __init__(self, root: Path, folder: str, storage: Storage, dest: str,
                 interval: float, skip: set[str] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 fresh: set[str] | None = None) -> None:
        self.root = root
        self.folder = folder
        self.storage = storage
        self.dest = dest
        self.interval = interval
        self.skip = skip or set()
        self.fresh = fresh or set()
        self.on_error = on_error
        # Path in root -> the state its copy in storage has.
        self.saved: dict[str, FileState] = {}
        self._baseline: dict[str, FileState] = {}
        self._errors: set[str] = set()  # said once each, not every pass
        self._pass_lock = threading.Lock()  # one pass at a time: the thread's or the last
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Note what is there now (not to be copied unless it changes), then copy at every
        interval in a background thread."""
        self._baseline = {rel: state for rel, state in self._scan().items()
                          if rel not in self.fresh}
        self._thread = threading.Thread(target=self._loop, name="live-sync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            self.sync()

    def _scan(self) -> dict[str, FileState]:
        base = self.root / self.folder if self.folder else self.root
        found: dict[str, FileState] = {}
        for top, dirs, files in os.walk(base):
            rel_top = Path(top).relative_to(self.root).as_posix()
            prefix = "" if rel_top == "." else f"{rel_top}/"
            dirs[:] = [d for d in dirs if f"{prefix}{d}" not in self.skip]
            for name in files:
                path = Path(top) / name
                try:
                    if path.is_symlink() or not path.is_file():
                        continue
                    found[f"{prefix}{name}"] = file_state(path)
                except OSError:  # gone meanwhile
                    continue
        return found

    def sync(self) -> list[str]:
        """One pass: copy what changed since its last copy; the paths copied."""
        copied: list[str] = []
        with self._pass_lock:
            for rel, state in self._scan().items():
                if self.saved.get(rel) == state or self._baseline.get(rel) == state:
                    continue
                path = self.root / rel
                try:
                    before = _copy_prefix(path, self.storage, join(self.dest, rel))
                    # Written to while copied: not what storage holds; copied again next pass.
                    if file_state(path) == before:
                        self.saved[rel] = before
                    else:
                        self.saved.pop(rel, None)
                    copied.append(rel)
                except Exception as exc:  # storage down, file gone: the next pass tries again
                    self._say(f"spellray: live sync of {rel} failed, will retry: "
                              f"{type(exc).__name__}: {exc}")
        return copied

    def _say(self, text: str) -> None:
        if self.on_error is not None and text not in self._errors:
            self._errors.add(text)
            self.on_error(text)

    def close(self, final: bool = True) -> dict[str, FileState]:
        """Stop the thread and (``final``) make the last pass: with the command ended,
        every file is copied whole. What storage holds, by path in root."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if final:
            self.sync()
        return dict(self.saved)

    def is_saved(self, rel: str) -> bool:
        """Storage holds ``rel`` as it is now (the outputs need not copy it again)."""
        state = self.saved.get(rel)
        try:
            return state is not None and file_state(self.root / rel) == state
        except OSError:
            return False

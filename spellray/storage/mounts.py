"""Mounting a storage resource (a file or folder) into a run's working directory.

The mount is a real directory tree whose files are symlinks, one per file: to the storage file
itself on local storage (no copy), to the node cache's copy on remote storage. Per-file links
rather than one link to the folder, so a file the run creates inside the mount lands in the
working directory, never in storage or the cache.

A mount path under ``/spell/`` (Spell's working folder) is a place in the run's working folder
(``in_spell_folder``): the runner mounts it there, the server checks overlaps by it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from spellray.errors import InvalidInput, NotFound
from spellray.storage.cache import NodeCache
from spellray.storage.paths import clean_resource_path
from spellray.storage.store import Entry, Storage

DOWNLOAD_WORKERS = 8
# Spell's working folder: paths under it are in the run's own folder (runner/spell_folder.py).
SPELL_ROOT = PurePosixPath("/spell")


def in_spell_folder(path: str) -> str | None:
    """Where a ``/spell`` path is in the run's working folder ("" for ``/spell`` itself), or
    None for a path that is not under ``/spell``."""
    clean = PurePosixPath(posixpath.normpath(path))
    if clean == SPELL_ROOT:
        return ""
    if clean.is_relative_to(SPELL_ROOT):
        return clean.relative_to(SPELL_ROOT).as_posix()
    return None


@dataclass(frozen=True)
class MountResult:
    resource: str
    dest: Path
    files: int
    bytes: int
    bytes_downloaded: int
    seconds: float
    listing_seconds: float  # of ``seconds``: finding out what is there (one listing on S3)


def _check_dest(dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        raise InvalidInput(f"cannot mount at {dest}: a file is there already")
    if dest.is_dir() and any(dest.iterdir()):
        raise InvalidInput(f"cannot mount at {dest}: the folder exists and is not empty")


def _os_error(dest: Path, exc: OSError) -> InvalidInput:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InvalidInput(f"cannot mount at {dest}: permission denied; use a relative path")
    return InvalidInput(f"cannot mount at {dest}: {exc.strerror or exc}")


def materialize(storage: Storage, resource: str, dest: Path, cache: NodeCache) -> MountResult:
    """Make ``dest`` show storage ``resource`` (a clean path such as runs/3/model)."""
    started = time.monotonic()
    rel = clean_resource_path(resource)
    if not rel:
        raise InvalidInput("mount a file or folder inside storage, such as uploads/data")
    # A folder's recursive listing says all a mount needs (on S3 one ListObjects per 1000
    # keys, with sizes and dates); only when it is empty is a second request needed, to tell
    # a file from an empty folder from nothing.
    entries = storage.list(rel, recursive=True)
    info = Entry(rel, 0, True, None) if entries else storage.info(rel)
    listing_seconds = time.monotonic() - started
    if info is None:
        raise NotFound(f"cannot mount {resource}: it does not exist in storage "
                       "(`spell ls` shows what there is)")
    try:
        _check_dest(dest)
        created = not dest.exists()
    except OSError as exc:
        raise _os_error(dest, exc) from exc
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if info.is_dir:
            dest.mkdir(exist_ok=True)
            files, size, downloaded = _mount_folder(rel, entries, dest, storage, cache)
        else:
            files, size, downloaded = _link_files(storage, [info], {info.path: dest}, cache)
    except OSError as exc:
        _undo(dest, created)
        raise _os_error(dest, exc) from exc
    except BaseException:
        _undo(dest, created)
        raise
    return MountResult(resource=rel, dest=dest, files=files, bytes=size,
                       bytes_downloaded=downloaded, seconds=time.monotonic() - started,
                       listing_seconds=listing_seconds)


def _undo(dest: Path, created: bool) -> None:
    """Leave no half-built mount behind (an empty folder the user made stays)."""
    if dest.is_symlink() or dest.is_file():
        dest.unlink(missing_ok=True)
    elif dest.is_dir():
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


def _mount_folder(rel: str, entries: list[Entry], dest: Path, storage: Storage,
                  cache: NodeCache) -> tuple[int, int, int]:
    targets: dict[str, Path] = {}
    files: list[Entry] = []
    for entry in entries:
        local = dest / entry.path[len(rel) + 1:]
        if entry.is_dir:
            local.mkdir(parents=True, exist_ok=True)  # keep empty folders too
        else:
            files.append(entry)
            targets[entry.path] = local
    return _link_files(storage, files, targets, cache)


def _link_files(storage: Storage, files: list[Entry], targets: dict[str, Path],
                cache: NodeCache) -> tuple[int, int, int]:
    """Symlink each file to its storage file (local) or cached copy (remote); return
    (files, bytes, bytes downloaded)."""
    downloaded = 0
    if storage.local_root is not None:
        sources = {e.path: storage.local_path(e.path) for e in files}
    else:
        # Hits first, in this thread: a warm mount of many small files would otherwise
        # spend more time handing them to the pool than looking them up.
        sources = {e.path: hit for e in files if (hit := cache.lookup(storage, e))}
        missing = [e for e in files if e.path not in sources]
        with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
            fetched = list(pool.map(
                lambda e: cache.fetch(storage, e.path, e, evict=False), missing))
        sources.update({e.path: path for e, (path, _) in zip(missing, fetched, strict=True)})
        downloaded = sum(n for _, n in fetched)
        if missing:  # evict only after a download, and never this mount's own files
            cache.evict(keep=list(sources.values()))
    # Each folder made once, then bare os.symlink: on a warm mount of many files this loop
    # is most of the time.
    for parent in sorted({targets[e.path].parent for e in files}):
        parent.mkdir(parents=True, exist_ok=True)
    for entry in files:
        os.symlink(sources[entry.path], targets[entry.path])
    return len(files), sum(e.size for e in files), downloaded

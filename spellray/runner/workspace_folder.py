"""A workspace's working folder in storage (workspaces/NAME/): restored into the run's folder
when it starts, saved back when it stops. Saving sends only what changed since the restore
and deletes what the user deleted, so storage holds the folder as it was at the stop."""

from __future__ import annotations

from pathlib import Path

from spellray.storage.code_package import changed_files, file_crc32
from spellray.storage.store import Storage


def restore(storage: Storage, prefix: str, folder: Path) -> dict[str, int]:
    """Copy workspaces/NAME/ into ``folder``; the manifest of what came (path -> CRC32)."""
    manifest: dict[str, int] = {}
    for entry in storage.list(prefix, recursive=True):
        if entry.is_dir:
            continue
        rel = entry.path[len(prefix) + 1:]
        dest = folder / rel
        storage.download_file(entry.path, dest)
        manifest[rel] = file_crc32(dest)
    return manifest


def save(storage: Storage, folder: Path, prefix: str, manifest: dict[str, int],
         skip: set[str]) -> list[str]:
    """Make workspaces/NAME/ what ``folder`` holds now (mounts in ``skip`` left out); the
    files sent."""
    sent = changed_files(folder, manifest, skip)
    for rel in sent:
        storage.upload_file(folder / rel, f"{prefix}/{rel}")
    for rel in manifest:
        gone = not (folder / rel).is_file() or (folder / rel).is_symlink()
        if gone and rel not in skip:
            storage.delete(f"{prefix}/{rel}")
    return sent

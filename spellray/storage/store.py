"""The storage tree (runs/, uploads/, public/, code/).

One small interface for the server, the runner and the CLI. Remote storage (s3://, gs://, any
URI pyarrow.fs opens) goes through pyarrow.fs. A local folder, the default, is served with
the standard library instead: importing pyarrow costs ~350 ms, and the runner pays start-up
time in every run. Every path goes through ``clean_resource_path`` first; local paths are
checked again after resolving symlinks.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from spellray.errors import NotFound, StorageError, UnsafePath
from spellray.storage.paths import clean_resource_path


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    is_dir: bool
    mtime: float | None


class Storage:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.local_root: Path | None = None
        self._fs: Any = None
        if "://" not in uri or uri.startswith("file://"):
            self.local_root = Path(uri.removeprefix("file://")).expanduser().resolve()
            self.local_root.mkdir(parents=True, exist_ok=True)
            self.uri = str(self.local_root)
            return
        import pyarrow.fs as pafs

        try:
            self._fs, root = pafs.FileSystem.from_uri(uri)
        except Exception as exc:  # pyarrow raises several types for bad URIs
            raise StorageError(f"cannot open storage {uri!r}: {exc}") from exc
        self._root = root.rstrip("/")

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
        entries = []
        for info in self._fs.get_file_info(selector):
            rel = info.path[len(self._root):].lstrip("/")
            mtime = info.mtime.timestamp() if info.mtime else None
            entries.append(Entry(rel, info.size or 0, info.type == pafs.FileType.Directory, mtime))
        return sorted(entries, key=lambda e: e.path)

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
            st = item.stat()
            rel = item.relative_to(self.local_root).as_posix()
            entries.append(Entry(rel, 0 if item.is_dir() else st.st_size, item.is_dir(),
                                 st.st_mtime))
        return sorted(entries, key=lambda e: e.path)

    def download_file(self, path: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.local_root is not None:
            shutil.copyfile(self._local(path), dest)
            return
        import pyarrow.fs as pafs

        pafs.copy_files(self._remote(path), str(dest), source_filesystem=self._fs,
                        destination_filesystem=pafs.LocalFileSystem())

    # -- writing --------------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole object; atomic on local storage (readers never see half a file)."""
        if self.local_root is not None:
            target = self._local(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            return
        with self._fs.open_output_stream(self._remote(path)) as f:
            f.write(data)

    def upload_file(self, source: Path, path: str) -> None:
        if self.local_root is not None:
            target = self._local(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return
        import pyarrow.fs as pafs

        pafs.copy_files(str(source), self._remote(path),
                        source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self._fs)

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

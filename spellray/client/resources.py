"""The SDK's storage side: ``client.resources`` (ls, cp, upload, rm); links are links.py.

Files move over HTTP through the server, streamed in pieces and several files at a time, so
a laptop needs no storage credentials and every path is checked in one place (the server).
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from spellray.client._http import ResourceGroup
from spellray.errors import Conflict, InvalidInput
from spellray.schemas import ResourceEntry, ResourceList

CHUNK = 1 << 20
# Files in flight at once: enough to keep a server and an object store busy with small files.
PARALLEL_FILES = 8
Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    return None


class Resources(ResourceGroup):
    def ls(self, path: str = "") -> ResourceList:
        return ResourceList.model_validate(
            self._api.request("GET", "/api/resources", params={"path": path}))

    def tree(self, path: str) -> ResourceList:
        """Every file under ``path`` (or the file itself)."""
        return ResourceList.model_validate(
            self._api.request("GET", "/api/resources/tree", params={"path": path}))

    def rm(self, path: str) -> str:
        return self._api.request("DELETE", "/api/resources", params={"path": path})["removed"]

    # -- copy out -------------------------------------------------------------------------
    def plan_copy(self, path: str, local_dir: Path, force: bool = False
                  ) -> list[tuple[ResourceEntry, Path]]:
        """Which storage file goes to which local path, like ``cp -r SOURCE DIR``. Refuses
        (before writing anything) when a local file would be overwritten without ``force``."""
        tree = self.tree(path)
        base = PurePosixPath(tree.path)
        single = len(tree.entries) == 1 and tree.entries[0].path == tree.path
        plan = []
        for entry in tree.entries:
            inner = PurePosixPath(entry.path).relative_to(base)
            rel = base.name if single else f"{base.name}/{inner}"
            plan.append((entry, local_dir / rel))
        clashes = [str(target) for _, target in plan if target.exists()]
        if clashes and not force:
            raise Conflict(f"{clashes[0]} exists (and {len(clashes) - 1} more); "
                           "use -f to overwrite")
        return plan

    def copy(self, plan: list[tuple[ResourceEntry, Path]], progress: Progress = _no_progress
             ) -> int:
        with ThreadPoolExecutor(PARALLEL_FILES) as pool:
            return sum(pool.map(lambda item: self.download_file(item[0].path, item[1], progress),
                                plan))

    def download_file(self, path: str, target: Path, progress: Progress = _no_progress) -> int:
        """Stream one storage file to ``target`` through a temp file: a copy that dies half-way
        never leaves half a file under the real name."""
        tmp = target.with_name(f".{target.name}.spellray-part")
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._api.stream("GET", "/api/resources/content",
                                  params={"path": path}) as reply, \
                    tmp.open("wb") as out:
                for chunk in reply.iter_bytes(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    progress(len(chunk))
            os.replace(tmp, target)
        except OSError as exc:  # the local side: no such folder, no permission, disk full
            raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}; copy into a "
                               "folder you can write to") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return written

    # -- upload ---------------------------------------------------------------------------
    def upload(self, local: Path, name: str | None = None, compress: bool = False,
               progress: Progress = _no_progress,
               plan: list[tuple[Path, str]] | None = None) -> str:
        """Upload a file or folder to uploads/<name> (default: its own name). An upload that
        was interrupted resumes under the same name; a finished one is never overwritten."""
        files = plan or plan_upload(local)
        name = name or Path(local).resolve().name
        self._api.request("POST", "/api/resources/uploads/begin", params={"name": name})
        with ThreadPoolExecutor(PARALLEL_FILES) as pool:
            list(pool.map(lambda f: self._put(name, f[0], f[1], compress, progress), files))
        self._api.request("POST", "/api/resources/uploads/finish", params={"name": name})
        return f"uploads/{name}"

    def _put(self, name: str, source: Path, rel: str, compress: bool, progress: Progress) -> None:
        headers = {"Content-Encoding": "gzip"} if compress else {}
        self._api.request("PUT", "/api/resources/uploads/content",
                          params={"name": name, "path": rel}, headers=headers,
                          content=_file_chunks(source, compress, progress))


def plan_upload(local: Path) -> list[tuple[Path, str]]:
    """The files ``spell upload local`` sends, each with its path inside the upload;
    refuses (before sending anything) a missing, empty or unreadable source."""
    local = Path(local)
    if not local.exists():
        raise InvalidInput(f"{local} does not exist; give a file or folder to upload")
    files = ([(local, "")] if local.is_file() else
             [(p, p.relative_to(local).as_posix()) for p in sorted(local.rglob("*"))
              if p.is_file()])
    if not files:
        raise InvalidInput(f"{local} holds no files to upload")
    unreadable = [str(f) for f, _ in files if not os.access(f, os.R_OK)]
    if unreadable:
        raise InvalidInput(f"cannot read {unreadable[0]} (and {len(unreadable) - 1} more); "
                           "nothing was uploaded")
    return files


def _file_chunks(source: Path, compress: bool, progress: Progress) -> Iterator[bytes]:
    # Level 1: -c is for slow links, where most of gzip's gain comes at its cheapest level.
    deflate = zlib.compressobj(1, wbits=31) if compress else None
    with source.open("rb") as f:
        while chunk := f.read(CHUNK):
            progress(len(chunk))
            yield deflate.compress(chunk) if deflate else chunk
    if deflate:
        yield deflate.flush()

"""The storage tree as users see it: browse, download, upload, remove (`spell ls / cp /
upload / rm`). Every path is resolved through links and cleaned before storage sees it."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import IO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from spellray.errors import Conflict, InvalidInput, NotFound
from spellray.schemas import ResourceEntry, ResourceList
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ownership import FIRST_ADMIN, owned_by, owners_in, path_owner, sees
from spellray.server.services.links import ROOTS, resolve
from spellray.server.services.run_archive import archived_ids
from spellray.storage.paths import clean_resource_path, join
from spellray.storage.store import Entry

CHUNK = 1 << 20
# An upload in progress leaves a marker here, so an interrupted upload can be resumed while a
# finished one is never overwritten.
INCOMPLETE_UPLOADS = ".spell/incomplete-uploads"


def _modified(mtime: float | None) -> datetime | None:
    return datetime.fromtimestamp(mtime, timezone.utc) if mtime is not None else None


def _entry(e: Entry) -> ResourceEntry:
    return ResourceEntry(path=e.path, name=posixpath.basename(e.path), size=e.size,
                         is_dir=e.is_dir, modified=_modified(e.mtime))


def _marker(upload: str) -> str:
    """Where an in-progress upload (uploads/<name>) leaves its marker."""
    return join(INCOMPLETE_UPLOADS, upload.removeprefix("uploads/"))


def upload_path(name: str) -> str:
    path = clean_resource_path(name)
    if not path:
        raise InvalidInput("give the upload a name, e.g. spell upload data -n mnist")
    return join("uploads", path)


class ResourceService:
    """``owners``: whose things the caller sees (None: everyone's); ``owner``: whose an
    upload it begins is."""

    def __init__(self, ctx: ServerContext, owners: frozenset[str] | None = None,
                 owner: str = FIRST_ADMIN) -> None:
        self.ctx = ctx
        self.storage = ctx.storage
        self.owners, self.owner = owners, owner

    def resolve(self, path: str) -> str:
        """The storage path, if the caller may see it: another owner's link, run, upload
        or workspace is not there for them."""
        with self.ctx.sessions() as session:
            resolved = resolve(session, path)
            if self.owners is None:
                return resolved
            head = clean_resource_path(path).partition("/")[0]
            link = session.get(db.Link, head) if head not in ROOTS else None
            owners = [path_owner(session, resolved), link.owner if link else None]
            if any(o is not None and not sees(self.owners, o) for o in owners):
                raise NotFound(f"there is no {path!r} in storage; `spell ls` shows what "
                               "there is")
            return resolved

    def _existing(self, path: str) -> tuple[str, Entry]:
        resolved = self.resolve(path)
        info = self.storage.info(resolved) if resolved else None
        if info is None:
            raise NotFound(f"there is no {path!r} in storage; `spell ls` shows what there is")
        return resolved, info

    def _visible(self, folder: str, entries: list[ResourceEntry]) -> list[ResourceEntry]:
        """A root folder's entries the caller may see (runs/, uploads/, workspaces/); not
        archived runs (`spell archive`)."""
        if folder == "runs":
            with self.ctx.sessions() as session:
                archived = {str(i) for i in archived_ids(
                    session, [int(e.name) for e in entries if e.name.isdigit()])}
            entries = [e for e in entries if e.name not in archived]
        if self.owners is None or folder not in ("runs", "uploads", "workspaces"):
            return entries
        with self.ctx.sessions() as session:
            owners = owners_in(session, folder, [e.name for e in entries])
        return [e for e in entries if sees(self.owners, owners.get(e.name, FIRST_ADMIN))]

    # -- browse ---------------------------------------------------------------------------
    def ls(self, path: str) -> ResourceList:
        if not clean_resource_path(path):
            return ResourceList(path="", entries=self._root())
        resolved, info = self._existing(path)
        if not info.is_dir:
            return ResourceList(path=resolved, entries=[_entry(info)])
        entries = [_entry(e) for e in self.storage.list(resolved)]
        if resolved == "uploads":
            entries = [e for e in entries if not self._incomplete(e.path)]
        return ResourceList(path=resolved, entries=self._visible(resolved, entries))

    def _root(self) -> list[ResourceEntry]:
        entries = [
            _entry(info) if (info := self.storage.info(root)) else
            ResourceEntry(path=root, name=root, size=0, is_dir=True)
            for root in ROOTS
        ]
        with self.ctx.sessions() as session:
            for link in session.scalars(select(db.Link).where(
                    owned_by(db.Link.owner, self.owners)).order_by(db.Link.alias)):
                entries.append(ResourceEntry(path=link.alias, name=link.alias, size=0,
                                             is_dir=False, modified=link.created_at,
                                             link_to=link.path))
        return entries

    def tree(self, path: str) -> ResourceList:
        """Every file under ``path`` (or the file itself), for copying a folder out."""
        resolved, info = self._existing(path)
        if not info.is_dir:
            return ResourceList(path=resolved, entries=[_entry(info)])
        files = [_entry(e) for e in self.storage.list(resolved, recursive=True) if not e.is_dir]
        return ResourceList(path=resolved, entries=files)

    def download(self, path: str) -> tuple[int, Iterator[bytes]]:
        resolved, info = self._existing(path)
        if info.is_dir:
            raise InvalidInput(f"{path!r} is a folder; list its files with /api/resources/tree")
        stream = self.storage.open_input(resolved)

        def chunks() -> Iterator[bytes]:
            with stream:
                while chunk := stream.read(CHUNK):
                    yield chunk

        return info.size, chunks()

    # -- upload ---------------------------------------------------------------------------
    def _incomplete(self, path: str) -> bool:
        return self.storage.exists(_marker(path))

    def begin_upload(self, name: str) -> bool:
        """Start (or resume) uploads/<name>; return whether an interrupted upload resumes."""
        path = upload_path(name)
        self._claim(path)
        marker = _marker(path)
        resuming = self.storage.exists(marker)
        if self.storage.exists(path) and not resuming:
            raise Conflict(f"{path} exists already; pick another name with -n, or "
                           f"`spell rm {path}` first")
        self.storage.write_bytes(marker, b"")
        self.ctx.open_uploads.add(path)
        return resuming

    def _claim(self, path: str) -> None:
        """The upload's name is the caller's (recorded now), or theirs already; another
        owner's name is taken."""
        top = path.split("/")[1]
        with self.ctx.sessions() as session:
            row = session.get(db.UploadOwner, top)
            if row is not None:
                if not sees(self.owners, row.owner):
                    raise Conflict(f"uploads/{top} is another owner's; pick another name "
                                   "with -n")
                return
            if self.storage.exists(f"uploads/{top}") and not sees(self.owners, FIRST_ADMIN):
                raise Conflict(f"uploads/{top} is another owner's; pick another name with -n")
            session.add(db.UploadOwner(name=top, owner=self.owner))
            try:
                session.commit()
            except IntegrityError:  # claimed at the same moment: the next check decides
                session.rollback()
                self._claim(path)

    def open_upload(self, name: str, rel: str) -> AbstractContextManager[IO[bytes]]:
        path = upload_path(name)
        self.resolve(path)  # another owner's upload is not there for the caller
        if path not in self.ctx.open_uploads and not self.storage.exists(_marker(path)):
            raise InvalidInput(f"no upload of {path} is in progress; begin it first")
        return self.storage.open_output(join(path, rel) if clean_resource_path(rel) else path)

    def finish_upload(self, name: str) -> None:
        path = upload_path(name)
        self.resolve(path)
        if not self.storage.exists(path):
            raise InvalidInput(f"nothing was uploaded to {path}")
        self.ctx.open_uploads.discard(path)
        self.storage.delete(_marker(path))

    # -- remove ---------------------------------------------------------------------------
    def rm(self, path: str) -> str:
        resolved, _ = self._existing(path)
        head, _, rest = resolved.partition("/")
        if head != "uploads" or not rest:
            raise InvalidInput(f"{path!r} cannot be removed: only uploads can "
                               "(runs keep their outputs, public/ is read-only)")
        self.storage.delete(resolved)
        self.ctx.open_uploads.discard(resolved)
        if "/" not in rest:  # the whole upload: its name is free again
            with self.ctx.sessions() as session:
                row = session.get(db.UploadOwner, rest)
                if row is not None:
                    session.delete(row)
                    session.commit()
        return resolved

"""The storage tree and links (spell ls, spell link)."""

from __future__ import annotations

from datetime import datetime

from spellray.schemas.base import Schema


class ResourceEntry(Schema):
    """One file or folder in the storage tree (or a link, at the root)."""

    path: str
    name: str
    size: int
    is_dir: bool
    modified: datetime | None = None
    link_to: str | None = None


class ResourceList(Schema):
    path: str
    entries: list[ResourceEntry]


class Link(Schema):
    alias: str
    path: str
    created_at: datetime | None = None

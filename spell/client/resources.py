"""Spell's ``client.resources``: list and copy files of storage (runs/N/..., uploads/...)."""

from __future__ import annotations

from pathlib import Path

from spellray.client import Client
from spellray.schemas import ResourceEntry


class ResourcesService:
    def __init__(self, client: Client) -> None:
        self._client = client

    def ls(self, path: str = "") -> list[ResourceEntry]:
        """The files and folders at ``path`` (each with ``path``, ``size``, ``is_dir``,
        ``modified``)."""
        return self._client.resources.ls(path).entries

    def cp(self, path: str, dest: str | Path = ".", force: bool = False) -> int:
        """Copy ``path`` (a file or folder) into the local folder ``dest``, like ``spell cp``;
        the bytes copied. An existing local file is kept (a Conflict) unless ``force``."""
        plan = self._client.resources.plan_copy(path, Path(dest), force=force)
        return self._client.resources.copy(plan)

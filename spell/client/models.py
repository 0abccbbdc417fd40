"""Spell's ``client.models``: named, versioned pointers to a run's outputs."""

from __future__ import annotations

from typing import Any

from spell.api.exceptions import UnsupportedError
from spellray.client import Client
from spellray.schemas import Model


class ModelsService:
    def __init__(self, client: Client) -> None:
        self._client = client

    def new(self, name: str, resource: str, version: str | None = None,
            files: list[str] | None = None, description: str | None = None,
            **options: Any) -> Model:
        """Model ``name`` (version ``version``, else the next v1, v2, ...) from ``resource``
        (e.g. ``runs/42`` or ``runs/42/model``). ``files`` (Spell's ``--file``) keeps only
        those files of the resource; ``options`` go through to spellray's ``models.create``."""
        if description is not None:
            raise UnsupportedError("description: spellray's models have no description; "
                                   "put it in the version name or a run's description")
        if files:
            options["files"] = list(files)
        ref = f"{name}:{version}" if version else name
        try:
            return self._client.models.create(ref, resource, **options)
        except TypeError as exc:  # an option this spellray's models.create does not take
            raise UnsupportedError(f"client.models.new: {exc}; see docs/spell-api.md") from None

    def get(self, name: str, version: str | None = None) -> Model:
        return self._client.models.get(f"{name}:{version}" if version else name)

    def list(self) -> list[Model]:
        return self._client.models.list()

    def rm(self, name: str, version: str | None = None) -> Model:
        return self._client.models.delete(f"{name}:{version}" if version else name)

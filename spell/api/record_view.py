"""What Spell's objects (a run, a search, a model server) share: spellray's record behind
Spell's names, with every other attribute of the record read through."""

from __future__ import annotations

from typing import Any

from spellray.client import Client


class RecordView:
    def __init__(self, client: Client, record: Any) -> None:
        self._client = client
        self._record = record

    def __getattr__(self, name: str) -> Any:
        # Private names never read through: a missing one is a bug here, not a record field.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._record, name)

"""Machine types a cluster offers. Spell's `-t NAME`; `CPU` is always there.

A cluster config (cluster_configs/) can add types in SPELLRAY_HOME/machine_types.json, each
becoming the Ray resources a run reserves.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from spellray.errors import InvalidInput
from spellray.schemas import MachineType

DEFAULT_MACHINE_TYPES = [MachineType(name="CPU", num_cpus=1)]


def load_machine_types(home: Path) -> dict[str, MachineType]:
    types = {t.name: t for t in DEFAULT_MACHINE_TYPES}
    path = home / "machine_types.json"
    if path.exists():
        for raw in json.loads(path.read_text()):
            machine_type = MachineType.model_validate(raw)
            types[machine_type.name] = machine_type
    return types


class MachineTypeFile(Mapping[str, MachineType]):
    """The machine types of ``home``, read again whenever machine_types.json changes: a
    head's server sees a type `spell cluster update` synced to it without a restart. A
    file that does not parse (half-written) keeps the last good types until it does."""

    def __init__(self, home: Path) -> None:
        self._path = home / "machine_types.json"
        self._home = home
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._types = load_machine_types(home)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            found = self._path.stat()
        except FileNotFoundError:
            return None
        return found.st_mtime_ns, found.st_size

    def _current(self) -> dict[str, MachineType]:
        stamp = self._stamp()
        if stamp != self._seen:
            with self._lock:
                try:
                    self._types = load_machine_types(self._home)
                except (ValueError, OSError):  # half-written by a sync: the next read
                    return self._types
                self._seen = stamp
        return self._types

    def __getitem__(self, name: str) -> MachineType:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def resolve_machine_type(name: str, known: Mapping[str, MachineType]) -> MachineType:
    if name not in known:
        raise InvalidInput(
            f"unknown machine type {name!r}; this cluster has: {', '.join(sorted(known))}"
        )
    return known[name]

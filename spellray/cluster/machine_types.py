"""Machine types a cluster offers. Spell's `-t NAME`; `CPU` is always there.

A cluster config (cluster_configs/) can add types in SPELLRAY_HOME/machine_types.json, each
becoming the Ray resources a run reserves.
"""

from __future__ import annotations

import json
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


def resolve_machine_type(name: str, known: dict[str, MachineType]) -> MachineType:
    if name not in known:
        raise InvalidInput(
            f"unknown machine type {name!r}; this cluster has: {', '.join(sorted(known))}"
        )
    return known[name]

"""The clusters this CLI knows (SPELLRAY_HOME/clusters.json): name -> server URL and token,
and which one is in use. ``local`` (the embedded cluster) is always there and needs no entry.

SPELLRAY_SERVER_URL still wins over the selection (runs, CI, scripts set it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spellray.errors import InvalidInput, NotFound
from spellray.secret_files import write_secret_json

LOCAL = "local"


@dataclass
class ClusterEntry:
    name: str
    server_url: str = ""
    token: str = ""
    # A cluster made by `spell cluster init`: its launcher config, and the SSH tunnel that
    # brings its server to server_url while it is in use.
    config_path: str = ""
    tunnel_pid: int | None = None


def _path(home: Path) -> Path:
    return home / "clusters.json"


def _read(home: Path) -> dict[str, Any]:
    try:
        return json.loads(_path(home).read_text())
    except (FileNotFoundError, ValueError):
        return {"current": LOCAL, "clusters": {}}


def _write(home: Path, data: dict[str, Any]) -> None:
    """0600 and replaced in one step: the file holds tokens."""
    write_secret_json(_path(home), data)


def list_clusters(home: Path) -> tuple[str, list[ClusterEntry]]:
    data = _read(home)
    return data["current"], [ClusterEntry(**e) for e in data["clusters"].values()]


def get(home: Path, name: str) -> ClusterEntry:
    data = _read(home)
    if name not in data["clusters"]:
        known = ", ".join([LOCAL, *data["clusters"]])
        raise NotFound(f"no cluster named {name!r}; known: {known} "
                       "(add one with spell cluster init, or spell cluster register)")
    return ClusterEntry(**data["clusters"][name])


def save(home: Path, entry: ClusterEntry) -> None:
    if entry.name == LOCAL:
        raise InvalidInput("'local' is the embedded cluster's name; choose another name")
    data = _read(home)
    data["clusters"][entry.name] = asdict(entry)
    _write(home, data)


def remove(home: Path, name: str) -> None:
    data = _read(home)
    data["clusters"].pop(name, None)
    if data["current"] == name:
        data["current"] = LOCAL
    _write(home, data)


def select(home: Path, name: str) -> None:
    if name != LOCAL:
        get(home, name)  # a clear error for an unknown name
    data = _read(home)
    data["current"] = name
    _write(home, data)


def selected_cluster(home: Path) -> ClusterEntry | None:
    """The cluster in use, or None for the local one. One small file read: this runs
    before every CLI command."""
    data = _read(home)
    current = data.get("current", LOCAL)
    if current == LOCAL or current not in data["clusters"]:
        return None
    return ClusterEntry(**data["clusters"][current])

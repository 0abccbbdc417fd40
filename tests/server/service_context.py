"""A server context for the run services' tests on the state DB (tests/server/conftest.py
gives the database): what they need of the server, and nothing of Ray but its reachability."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from spellray.errors import RayUnavailable
from spellray.schemas import MachineType
from spellray.server import db
from spellray.server.services.environments import ClusterAbilities
from spellray.settings import Settings
from spellray.storage.store import Storage


class ReachableRay:
    """Ray as the submission path asks it: reachable (the queue submits later), until a
    test sets ``up`` False."""

    def __init__(self) -> None:
        self.up = True

    def reachable(self) -> None:
        if not self.up:
            raise RayUnavailable("Ray is down")


@contextmanager
def service_context(database_url: str, tmp_path: Path, machine_types: dict[str, MachineType],
                    **extra: Any) -> Iterator[Any]:
    """What the run services need of a server's context: the state DB, file storage under
    ``tmp_path``, the machine types, a reachable Ray; ``extra`` adds to it (tracking, ...)."""
    engine = db.make_engine(database_url)
    settings = Settings(home=tmp_path)
    try:
        yield SimpleNamespace(
            sessions=db.make_session_factory(engine), wake=threading.Event(),
            storage=Storage(f"file://{tmp_path / 'storage'}", settings),
            machine_types=machine_types, settings=settings, ray=ReachableRay(),
            abilities=ClusterAbilities(conda=False, container_runtime=False),
            advertise_url="http://127.0.0.1:1", server_id="test", **extra)
    finally:
        engine.dispose()  # Postgres: no connection left behind to the dropped database

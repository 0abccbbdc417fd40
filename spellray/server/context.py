"""What every request handler and the reconciler share: settings, DB, storage, Ray."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from spellray.schemas import MachineType
from spellray.server.ray_jobs import RayJobs
from spellray.server.services.environments import ClusterAbilities
from spellray.server.tracking import Tracking
from spellray.settings import Settings
from spellray.storage.store import Storage


@dataclass
class ServerContext:
    settings: Settings
    sessions: sessionmaker
    storage: Storage
    ray: RayJobs
    server_id: str
    # The URL runners use to report back (they may be on other nodes).
    advertise_url: str
    # Re-read when the file changes (cluster/machine_types.py MachineTypeFile).
    machine_types: Mapping[str, MachineType]
    # MLflow: the tracking store and its server app (loaded lazily).
    tracking: Tracking
    # uploads/<name> begun on this server: spares a storage lookup for each file sent.
    open_uploads: set[str] = field(default_factory=set)
    # What the nodes can build (conda, containers), looked at once.
    abilities: ClusterAbilities = field(default_factory=ClusterAbilities.detect)
    # The port the server listens on: the one forward its users' SSH keys allow (None when
    # the app was made without one, as in tests that never listen).
    listen_port: int | None = None
    # Set when a run is queued or ends: the reconciler's next pass (and the queue) runs now.
    wake: threading.Event = field(default_factory=threading.Event)

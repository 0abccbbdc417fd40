"""Machine types and the cluster's nodes (spell cluster status, GET /api/info)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from spellray.schemas.base import Schema


class MachineType(Schema):
    name: str
    num_cpus: float = 1
    num_gpus: float = 0
    resources: dict[str, float] = Field(default_factory=dict)
    # On a cluster made by the Ray cluster launcher (spell cluster machine-type): one
    # machine of the type, its autoscaling bounds and its price (for spell cluster status).
    instance_type: str | None = None
    machine_cpus: int | None = None
    memory_gb: float | None = None
    accelerator: str | None = None
    price_per_hour: float | None = None
    min_machines: int = 0
    max_machines: int = 0
    idle_timeout_minutes: float | None = None
    spot: bool = False
    # Runs on this type resume after an interruption unless they say --disable-auto-resume.
    default_auto_resume: bool = False


class ServerInfo(Schema):
    version: str
    server_id: str
    ray_address: str
    storage_uri: str
    machine_types: list[MachineType]


class ClusterNode(Schema):
    """One Ray node, as `spell cluster status` shows it."""

    node_id: str
    ip: str
    is_head: bool
    alive: bool
    # The machine type whose resource the node advertises; "head" or "-" otherwise.
    machine_type: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    hours: float = 0
    cost: float | None = None
    # Active runs whose Ray job's driver is on this node.
    runs: list[int] = Field(default_factory=list)
    # What Ray says the node has (CPU, GPU, memory, ...), and what of it is free now (None
    # when that was not asked for, or Ray's GCS did not answer).
    resources_total: dict[str, float] = Field(default_factory=dict)
    resources_free: dict[str, float] | None = None


class ClusterStatus(Schema):
    ray_address: str
    machine_types: list[MachineType]
    nodes: list[ClusterNode]
    # Instance hours times each machine type's table price, for every node Ray still lists
    # (alive, or ended within Ray's memory of dead nodes).
    cost: float
    # Active runs with a Ray job whose driver is on no node listed (not placed yet).
    unplaced_runs: list[int] = Field(default_factory=list)

"""Hardware stats of a run (spell stats): the samples its runner took, as stored in
``runs/<id>/.spell/stats.jsonl`` (runner/hardware_stats.py makes them)."""

from __future__ import annotations

from pydantic import Field

from spellray.schemas.base import Schema
from spellray.schemas.runs import RunStatus
from spellray.storage.paths import STATS_FILE

__all__ = ["STATS_FILE", "GpuStats", "StatsChunk", "StatsSample"]


class GpuStats(Schema):
    """One GPU the run was given. ``index`` is the one the command sees (CUDA's, in the
    order of CUDA_VISIBLE_DEVICES). A reading NVML refused is None."""

    index: int
    uuid: str | None = None
    utilization_percent: float | None = None
    memory_used_bytes: float | None = None
    memory_total_bytes: float | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None


class StatsSample(Schema):
    """One sample. ``rank``: a distributed run's rank, None for a single run. ``cpu_percent``
    and ``memory_rss_bytes`` are the user's whole process tree (None when it was not
    running); CPU % is of one core (200 = two cores busy), the node's of all its cores.
    Rates are over the ``span_seconds`` before ``time``."""

    time: float
    rank: int | None = None
    span_seconds: float = 0.0
    cpu_percent: float | None = None
    memory_rss_bytes: float | None = None
    node_cpu_percent: float
    node_memory_used_bytes: float
    node_memory_total_bytes: float
    network_receive_bytes_per_second: float = 0.0
    network_transmit_bytes_per_second: float = 0.0
    disk_read_bytes_per_second: float = 0.0
    disk_write_bytes_per_second: float = 0.0
    gpus: list[GpuStats] = Field(default_factory=list)


class StatsChunk(Schema):
    """The samples from byte ``offset`` of the run's stats file on; ``offset`` is where the
    next request starts. ``finished``: the run has ended and every sample is here."""

    samples: list[StatsSample]
    offset: int
    status: RunStatus
    finished: bool

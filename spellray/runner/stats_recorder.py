"""Where a run's hardware stats samples go: a JSON line each in ``runs/<id>/.spell/stats.jsonl``
in storage (what `spell stats` and ``client.runs.stats`` read, through the server), and the
run's MLflow run as ``system/...`` metrics (MLflow's UI shows them under "System metrics").

Why the runner writes the samples to storage itself, beside the log, rather than the server
writing them to a table: storage is where the DESIGN keeps a run's record (run.json, log,
metrics.jsonl), it outlives the cluster and the server's database alike, it is reachable from
the runner on any node, and the samples are kept even while the server is down (a run must
not need the server to finish). The server reads the file, as it reads the log, so a run on
another node or one that ended long ago is the same to it. The MLflow copy goes through the
runner's retried report path (the metrics outbox: ``POST /api/runs/<id>/metrics``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spellray.runner.hardware_stats import Sample
    from spellray.storage.store import Storage

# Object stores cannot append: the local copy is uploaded whole, at most this often (and at
# the end), as the log is.
UPLOAD_EVERY = 3.0


def mlflow_points(sample: Sample, step: int, totals: dict[str, float]) -> list[dict[str, Any]]:
    """The sample as MLflow system metrics, named as MLflow's own monitor names them
    (mlflow/system_metrics/metrics/*.py); ``system/rank_K/...`` for a distributed run's rank
    K (MLflow's ``node_id`` form). Network totals are megabytes since the run's start, as
    MLflow's are; ``totals`` carries them between samples. Names MLflow has none for
    (the process tree, disk I/O, GPU temperature) follow its pattern."""
    prefix = "system/" + (f"rank_{sample['rank']}/" if sample.get("rank") is not None else "")
    elapsed = sample.get("span_seconds") or 0.0
    for key, rate in (("network_receive_megabytes", "network_receive_bytes_per_second"),
                      ("network_transmit_megabytes", "network_transmit_bytes_per_second"),
                      ("disk_read_megabytes", "disk_read_bytes_per_second"),
                      ("disk_write_megabytes", "disk_write_bytes_per_second")):
        totals[key] = totals.get(key, 0.0) + (sample.get(rate) or 0.0) * elapsed / 1e6
    used, total = sample["node_memory_used_bytes"], sample["node_memory_total_bytes"]
    values: dict[str, float | None] = {
        "cpu_utilization_percentage": sample["node_cpu_percent"],
        "system_memory_usage_megabytes": used / 1e6,
        "system_memory_usage_percentage": used / total * 100 if total else None,
        **{key: round(value, 3) for key, value in totals.items()},
        "process_cpu_utilization_percentage": sample.get("cpu_percent"),
        "process_memory_rss_megabytes": _mb(sample.get("memory_rss_bytes")),
    }
    for gpu in sample.get("gpus") or []:
        name, used_gpu, total_gpu = f"gpu_{gpu['index']}_", gpu.get("memory_used_bytes"), \
            gpu.get("memory_total_bytes")
        power, limit = gpu.get("power_watts"), gpu.get("power_limit_watts")
        values.update({
            name + "utilization_percentage": gpu.get("utilization_percent"),
            name + "memory_usage_megabytes": _mb(used_gpu),
            name + "memory_usage_percentage":
                round(used_gpu / total_gpu * 100, 1) if used_gpu is not None and total_gpu
                else None,
            name + "power_usage_watts": power,
            name + "power_usage_percentage":
                power / limit * 100 if power is not None and limit else None,
            name + "temperature_celsius": gpu.get("temperature_celsius"),
        })
    return [{"name": prefix + key, "value": float(value), "index": step, "time": sample["time"]}
            for key, value in values.items() if value is not None]


def _mb(value: float | None) -> float | None:
    return value / 1e6 if value is not None else None


class StatsRecorder:
    """Takes samples from any thread (the runner's sampler, or a distributed run's ranks as
    the runner relays them), keeps them in storage and hands their MLflow metrics to
    ``send_metrics``."""

    def __init__(self, storage: Storage, path: str, local_copy: Path,
                 send_metrics: Callable[[list[dict[str, Any]]], None]) -> None:
        self._storage = storage
        self._path = path
        self._local_copy = local_copy
        self._send_metrics = send_metrics
        self._lock = threading.Lock()
        self._append = storage.open_append(path)
        self._copy = None if self._append else local_copy.open("ab")
        self._last_upload = 0.0
        self._dirty = False
        # Per rank (None: a single run): samples so far (MLflow's step), I/O totals.
        self._steps: dict[int | None, int] = {}
        self._totals: dict[int | None, dict[str, float]] = {}
        self.count = 0

    def record(self, sample: Sample) -> None:
        line = json.dumps(sample, separators=(",", ":")).encode() + b"\n"
        rank = sample.get("rank")
        with self._lock:
            if self._append is None and self._copy is None:
                return  # closed: the run's record is complete
            self.count += 1
            step = self._steps[rank] = self._steps.get(rank, -1) + 1
            points = mlflow_points(sample, step, self._totals.setdefault(rank, {}))
            if self._append is not None:
                self._append.write(line)
                self._append.flush()
            else:
                assert self._copy is not None
                self._copy.write(line)
                self._dirty = True
                if time.monotonic() - self._last_upload > UPLOAD_EVERY:
                    self._upload()
        self._send_metrics(points)

    def _upload(self) -> None:
        assert self._copy is not None
        self._copy.flush()
        self._storage.upload_file(self._local_copy, self._path)
        self._last_upload, self._dirty = time.monotonic(), False

    def close(self) -> None:
        """Upload what is left; the file is whole in storage after this."""
        with self._lock:
            if self._copy is not None and self._dirty:
                self._upload()
            for stream in (self._append, self._copy):
                if stream is not None:
                    stream.close()
            self._append = self._copy = None
        self._local_copy.unlink(missing_ok=True)

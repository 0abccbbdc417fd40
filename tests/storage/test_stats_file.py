"""A run's hardware stats file on object storage (a real S3 endpoint: moto's server), where
nothing can be appended: the runner's copy is uploaded whole, and is complete at close."""

from __future__ import annotations

import json
from pathlib import Path

from spellray.runner.stats_recorder import StatsRecorder
from spellray.storage.store import Storage

SAMPLE = {"rank": None, "span_seconds": 1.0, "node_cpu_percent": 1.0,
          "node_memory_used_bytes": 1e9, "node_memory_total_bytes": 2e9, "gpus": []}


def test_every_sample_is_in_object_storage_after_close(s3: Storage, tmp_path: Path) -> None:
    copy = tmp_path / "run.stats.jsonl"
    recorder = StatsRecorder(s3, "runs/9/.spell/stats.jsonl", copy, lambda _: None)
    recorder.record({**SAMPLE, "time": 1.0})  # the first goes up at once
    assert len(s3.read_bytes("runs/9/.spell/stats.jsonl").splitlines()) == 1
    for i in range(2, 6):
        recorder.record({**SAMPLE, "time": float(i)})
    recorder.close()
    lines = s3.read_bytes("runs/9/.spell/stats.jsonl").splitlines()
    assert [json.loads(line)["time"] for line in lines] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert not copy.exists()  # the node keeps nothing

"""Hardware stats without a cluster: the NVML path against a stand-in ``pynvml`` module (no
GPU here), the process tree measured by the real psutil on real processes, and the recorder's
file and MLflow names."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import psutil
import pytest

from spellray.runner.hardware_stats import (
    GpuReader,
    HardwareSampler,
    ProcessTree,
    gpu_order_env,
)
from spellray.runner.stats_recorder import StatsRecorder, mlflow_points
from spellray.schemas import StatsSample
from spellray.storage.store import Storage
from tests.helpers import wait_for


class NVMLError(Exception):
    pass


def fake_nvml(uuids: list[str], init_fails: bool = False,
              power_unsupported: bool = False) -> ModuleType:
    """A stand-in for nvidia-ml-py's ``pynvml`` module: the calls GpuReader makes, over
    ``len(uuids)`` GPUs in NVML (PCI bus) order; GPU i reads i * 10 % busy."""
    nvml = ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.NVML_TEMPERATURE_GPU = 0

    def init() -> None:
        if init_fails:
            raise NVMLError("Driver Not Loaded")

    def by_index(i: int) -> int:
        if not 0 <= i < len(uuids):
            raise NVMLError("Invalid Argument")
        return i

    def by_uuid(uuid: str | bytes) -> int:
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        if text not in uuids:
            raise NVMLError("Not Found")
        return uuids.index(text)

    def power(handle: int) -> int:
        if power_unsupported:
            raise NVMLError("Not Supported")
        return 100_000 + handle * 1000  # milliwatts

    nvml.nvmlInit = init
    nvml.nvmlDeviceGetCount = lambda: len(uuids)
    nvml.nvmlDeviceGetHandleByIndex = by_index
    nvml.nvmlDeviceGetHandleByUUID = by_uuid
    nvml.nvmlDeviceGetUUID = lambda h: uuids[h]
    nvml.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=h * 10, memory=0)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=(h + 1) * 2**30,
                                                             total=16 * 2**30, free=0)
    nvml.nvmlDeviceGetTemperature = lambda h, sensor: 40 + h
    nvml.nvmlDeviceGetPowerUsage = power
    nvml.nvmlDeviceGetEnforcedPowerLimit = lambda h: 250_000
    return nvml


UUIDS = ["GPU-aaaa1111", "GPU-bbbb2222", "GPU-cccc3333"]


def _read(monkeypatch: pytest.MonkeyPatch, visible: str | None, **kwargs) -> list[dict]:
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    return GpuReader(fake_nvml(UUIDS, **kwargs)).read()


def test_gpus_named_by_index_are_the_runs_in_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = _read(monkeypatch, "2,0")
    assert [(g["index"], g["uuid"]) for g in gpus] == [(0, "GPU-cccc3333"), (1, "GPU-aaaa1111")]
    first = gpus[0]
    assert first["utilization_percent"] == 20.0
    assert first["memory_used_bytes"] == 3 * 2**30 and first["memory_total_bytes"] == 16 * 2**30
    assert first["temperature_celsius"] == 42.0
    assert first["power_watts"] == 102.0 and first["power_limit_watts"] == 250.0


def test_gpus_named_by_uuid_and_by_uuid_start(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = _read(monkeypatch, "GPU-bbbb2222,GPU-cccc")
    assert [(g["index"], g["uuid"]) for g in gpus] == [(0, "GPU-bbbb2222"), (1, "GPU-cccc3333")]
    assert [g["utilization_percent"] for g in gpus] == [10.0, 20.0]


def test_cuda_stops_at_an_invalid_entry_and_so_do_stats(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [g["uuid"] for g in _read(monkeypatch, "1,7,0")] == ["GPU-bbbb2222"]


def test_no_gpus_given_unset_and_no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _read(monkeypatch, "") == []  # Ray gave the run none
    assert len(_read(monkeypatch, None)) == 3  # unset: the command sees every GPU
    assert _read(monkeypatch, "0", init_fails=True) == []  # NVML there, no driver


def test_a_reading_nvml_refuses_is_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    (gpu,) = _read(monkeypatch, "0", power_unsupported=True)
    assert gpu["power_watts"] is None and gpu["utilization_percent"] == 0.0


def test_without_nvidia_ml_py_there_are_no_gpu_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml fails
    assert GpuReader().devices == []


def test_cuda_numbers_gpus_in_pci_order_unless_the_node_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    assert gpu_order_env() == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    assert gpu_order_env() == {}


def test_gpu_samples_become_mlflows_system_metric_names(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = {"time": 1000.0, "rank": None, "span_seconds": 2.0, "cpu_percent": 50.0,
              "memory_rss_bytes": 2e8, "node_cpu_percent": 25.0,
              "node_memory_used_bytes": 4e9, "node_memory_total_bytes": 8e9,
              "network_receive_bytes_per_second": 1e6, "network_transmit_bytes_per_second": 0,
              "disk_read_bytes_per_second": 0, "disk_write_bytes_per_second": 5e5,
              "gpus": _read(monkeypatch, "1")}
    totals: dict[str, float] = {}
    points = {p["name"]: p["value"] for p in mlflow_points(sample, 0, totals)}
    assert points["system/cpu_utilization_percentage"] == 25.0
    assert points["system/system_memory_usage_megabytes"] == 4000.0
    assert points["system/system_memory_usage_percentage"] == 50.0
    assert points["system/network_receive_megabytes"] == 2.0  # 1 MB/s over 2 s
    assert points["system/process_memory_rss_megabytes"] == 200.0
    assert points["system/gpu_0_utilization_percentage"] == 10.0
    assert points["system/gpu_0_memory_usage_megabytes"] == 2 * 2**30 / 1e6
    assert points["system/gpu_0_power_usage_watts"] == 101.0
    assert points["system/gpu_0_power_usage_percentage"] == pytest.approx(40.4)
    ranked = mlflow_points({**sample, "rank": 3}, 1, totals)
    assert {p["name"] for p in ranked} >= {"system/rank_3/cpu_utilization_percentage",
                                           "system/rank_3/gpu_0_temperature_celsius"}
    assert next(p["value"] for p in ranked
                if p["name"] == "system/rank_3/network_receive_megabytes") == 4.0


ALLOCATE = ("import sys, time\n"
            "block = b'x' * (200 * 1024 * 1024)  # written, so resident\n"
            "print('allocated', flush=True)\n"
            "sys.stdin.read()\n")


def test_process_tree_rss_includes_grandchildren(tmp_path: Path) -> None:
    script = tmp_path / "allocate.py"
    script.write_text(ALLOCATE)
    # A shell that starts python: the allocation is in the shell's child, not the root.
    shell = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} {script}; true"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert shell.stdout is not None and shell.stdout.readline() == b"allocated\n"
        samples: list[dict] = []
        sampler = HardwareSampler(lambda: shell.pid, samples.append, 0.1,
                                  gpus=GpuReader(fake_nvml([], init_fails=True)))
        wait_for(lambda: len(samples) >= 2, what="two samples")
        sampler.close()
        rss = samples[-1]["memory_rss_bytes"]
        assert 200 * 2**20 <= rss < 260 * 2**20
        assert samples[-1]["gpus"] == []
        StatsSample.model_validate(samples[-1])  # what the server reads back
    finally:
        assert shell.stdin is not None
        shell.stdin.close()
        shell.wait()


def test_cpu_of_the_tree_counts_a_busy_grandchild() -> None:
    busy = subprocess.Popen(["/bin/sh", "-c",
                             f"{sys.executable} -c 'while True: pass'; true"])
    child = wait_for(lambda: psutil.Process(busy.pid).children(), what="the busy child")[0]
    try:
        tree = ProcessTree()
        start, used = time.time(), sum(child.cpu_times()[:2])
        tree.read(busy.pid, start, start)
        threading.Event().wait(1.0)
        now, used_now = time.time(), sum(child.cpu_times()[:2])
        cpu, _ = tree.read(busy.pid, start, now)
        # What psutil says of the child alone over the same second (the shell only waits).
        assert cpu is not None and cpu > 0
        assert cpu == pytest.approx((used_now - used) / (now - start) * 100, abs=10)
    finally:
        child.kill()  # the shell then ends by itself
        busy.wait()


def test_recorder_keeps_every_sample_and_sends_mlflow_metrics(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "storage"))
    sent: list[dict] = []
    recorder = StatsRecorder(storage, "runs/7/.spell/stats.jsonl", tmp_path / "copy.jsonl",
                             sent.extend)
    base = {"rank": None, "span_seconds": 1.0, "node_cpu_percent": 1.0,
            "node_memory_used_bytes": 1e9, "node_memory_total_bytes": 2e9, "gpus": []}
    for i in range(3):
        recorder.record({**base, "time": 100.0 + i})
    recorder.close()
    recorder.record({**base, "time": 200.0})  # after the end: not kept
    lines = storage.read_bytes("runs/7/.spell/stats.jsonl").splitlines()
    assert [json.loads(line)["time"] for line in lines] == [100.0, 101.0, 102.0]
    steps = sorted({p["index"] for p in sent if p["name"] == "system/cpu_utilization_percentage"})
    assert steps == [0, 1, 2]

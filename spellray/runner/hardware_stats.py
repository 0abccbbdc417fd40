"""Hardware stats of a run, sampled by a thread of the runner (or of a distributed run's rank)
every SPELLRAY_STATS_INTERVAL_SECONDS and once more at the end: CPU % and RSS of the user's
whole process tree, the node's CPU %, memory, network and disk I/O rates (psutil), and the
GPUs the run was given (NVIDIA's own bindings, nvidia-ml-py: ``import pynvml``).

A sample is a plain dict (spellray.schemas.StatsSample's fields); the runner records it
(runner/stats_recorder.py). Cheap on purpose: one sample reads a few /proc files per process
of the tree, and nothing runs between samples.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psutil

Sample = dict[str, Any]
RootPid = Callable[[], int | None]


def _cuda_visible_devices() -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as a list of entries; None when unset (every GPU is visible)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [entry.strip() for entry in value.split(",") if entry.strip()]


class GpuReader:
    """The run's GPUs through NVML. Ray sets CUDA_VISIBLE_DEVICES to the GPU ids it gave the
    run: indices (NVML's, which are PCI bus order: CUDA's too with CUDA_DEVICE_ORDER=
    PCI_BUS_ID, which the runner sets for the command) or, on nodes started with UUIDs, GPU
    UUIDs. No nvidia-ml-py, no driver, no GPU: ``devices`` is empty and samples have none."""

    def __init__(self, nvml: ModuleType | None = None) -> None:
        """``nvml``: the pynvml module (a stand-in in tests); imported when not given."""
        self.nvml = nvml
        self.devices: list[tuple[int, Any]] = []  # (index the command sees, NVML handle)
        try:
            if self.nvml is None:
                import pynvml

                self.nvml = pynvml
            self.nvml.nvmlInit()
            self.devices = self._visible()
        except Exception:  # no library, no driver (NVMLError), no device: no GPU columns
            self.devices = []

    def _visible(self) -> list[tuple[int, Any]]:
        assert self.nvml is not None
        entries = _cuda_visible_devices()
        if entries is None:
            count = self.nvml.nvmlDeviceGetCount()
            return [(i, self.nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        found = []
        for entry in entries:
            handle = self._handle(entry)
            if handle is None:  # CUDA ignores the entries after an invalid one: so do we
                break
            found.append((len(found), handle))
        return found

    def _handle(self, entry: str) -> Any:
        assert self.nvml is not None
        try:
            if entry.isdigit():
                return self.nvml.nvmlDeviceGetHandleByIndex(int(entry))
            return self.nvml.nvmlDeviceGetHandleByUUID(entry)
        except Exception:
            return self._handle_by_uuid_prefix(entry)

    def _handle_by_uuid_prefix(self, entry: str) -> Any:
        """CUDA also takes a unique start of a UUID (``GPU-8f1c``)."""
        assert self.nvml is not None
        try:
            handles = [self.nvml.nvmlDeviceGetHandleByIndex(i)
                       for i in range(self.nvml.nvmlDeviceGetCount())]
            matches = [h for h in handles if _text(self.nvml.nvmlDeviceGetUUID(h))
                       .startswith(entry)]
        except Exception:
            return None
        return matches[0] if len(matches) == 1 else None

    def read(self) -> list[dict[str, Any]]:
        return [self._read_one(index, handle) for index, handle in self.devices]

    def _read_one(self, index: int, handle: Any) -> dict[str, Any]:
        nvml = self.nvml
        assert nvml is not None

        def ask(call: Callable[[], Any]) -> Any:
            try:
                return call()
            except Exception:  # one reading NVML refuses (NVMLError_NotSupported): blank
                return None

        memory = ask(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power = ask(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit = ask(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        uuid = ask(lambda: nvml.nvmlDeviceGetUUID(handle))
        return {
            "index": index,
            "uuid": _text(uuid) if uuid is not None else None,
            "utilization_percent": ask(
                lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
            "memory_used_bytes": float(memory.used) if memory is not None else None,
            "memory_total_bytes": float(memory.total) if memory is not None else None,
            "temperature_celsius": ask(lambda: float(
                nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
            "power_watts": power / 1000 if power is not None else None,  # NVML says mW
            "power_limit_watts": limit / 1000 if limit is not None else None,
        }


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ProcessTree:
    """CPU % and RSS of a process and all its descendants. CPU time is counted per process
    between samples, so a process that started since the last sample counts from its start
    and one that ended drops out."""

    def __init__(self) -> None:
        self._cpu_seen: dict[tuple[int, float], float] = {}  # (pid, create time) -> cpu s

    def read(self, root: int | None, since: float, now: float) -> tuple[float | None,
                                                                         float | None]:
        """(CPU % since ``since``, RSS bytes); (None, None) when there is no tree."""
        if root is None:
            return None, None
        try:
            top = psutil.Process(root)
            processes = [top, *top.children(recursive=True)]
        except psutil.Error:
            return None, None
        cpu_seconds, rss, seen = 0.0, 0, {}
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    key = (process.pid, process.create_time())
                    used = times.user + times.system
                    rss += process.memory_info().rss
            except psutil.Error:  # ended meanwhile
                continue
            seen[key] = used
            before = self._cpu_seen.get(key, 0.0 if key[1] >= since else used)
            cpu_seconds += max(used - before, 0.0)
        self._cpu_seen = seen
        elapsed = max(now - since, 1e-6)
        return round(cpu_seconds / elapsed * 100, 1), float(rss)


class HardwareSampler:
    """Samples every ``interval`` seconds in a thread, and once more at ``close``; each
    sample goes to ``record`` (from the thread). ``root_pid`` says which process is the
    user's command now (None before it starts)."""

    def __init__(self, root_pid: RootPid, record: Callable[[Sample], None], interval: float,
                 rank: int | None = None, gpus: GpuReader | None = None) -> None:
        self.root_pid = root_pid
        self.record = record
        self.interval = interval
        self.rank = rank
        self.gpus = gpus if gpus is not None else GpuReader()
        self.tree = ProcessTree()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the last sample and the one at close never overlap
        self._last_time = time.time()
        self._last_io = _io_counters()
        psutil.cpu_percent(None)  # the node's CPU % is measured from here
        self._thread = threading.Thread(target=self._loop, name="hardware-stats", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def close(self) -> None:
        """Stop, taking the last sample now (the end of the run)."""
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        with self._lock:
            try:
                sample = self._read()
            except Exception as exc:  # stats must never fail the run
                print(f"spellray: a hardware stats sample failed: {exc!r}", flush=True)
                return
        self.record(sample)

    def _read(self) -> Sample:
        now, io = time.time(), _io_counters()
        elapsed = max(now - self._last_time, 1e-6)
        cpu, rss = self.tree.read(self.root_pid(), self._last_time, now)
        memory = psutil.virtual_memory()
        rates = {name: round(max(io[name] - self._last_io[name], 0) / elapsed, 1)
                 for name in io}
        self._last_time, self._last_io = now, io
        return {
            "time": now, "rank": self.rank, "span_seconds": round(elapsed, 3),
            "cpu_percent": cpu, "memory_rss_bytes": rss,
            "node_cpu_percent": psutil.cpu_percent(None),
            "node_memory_used_bytes": float(memory.total - memory.available),
            "node_memory_total_bytes": float(memory.total),
            "network_receive_bytes_per_second": rates["net_recv"],
            "network_transmit_bytes_per_second": rates["net_sent"],
            "disk_read_bytes_per_second": rates["disk_read"],
            "disk_write_bytes_per_second": rates["disk_write"],
            "gpus": self.gpus.read(),
        }


def _io_counters() -> dict[str, int]:
    """The node's network and disk byte counters (zero where the node has none to read,
    such as some containers' disks)."""
    net, disk = psutil.net_io_counters(), psutil.disk_io_counters()
    return {"net_recv": net.bytes_recv if net else 0, "net_sent": net.bytes_sent if net else 0,
            "disk_read": disk.read_bytes if disk else 0,
            "disk_write": disk.write_bytes if disk else 0}


def gpu_order_env() -> dict[str, str]:
    """CUDA_DEVICE_ORDER=PCI_BUS_ID for the command, unless the node sets its own: CUDA's
    indices then match NVML's, which are the ids Ray hands out in CUDA_VISIBLE_DEVICES."""
    return {} if "CUDA_DEVICE_ORDER" in os.environ else {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}

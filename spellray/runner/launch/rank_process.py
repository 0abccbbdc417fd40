"""One rank of a distributed run: a Ray actor in one placement group bundle.

It has a working folder of its own (runner/workdir.py), made exactly as the runner's for a
single run (the same code package or git commit, the same mounts), so every rank sees the
same files on any node; runs the user's command there with the rank's environment; hands its
log lines (and rank 0's metrics) to the runner when asked; and saves its outputs.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from pathlib import Path

from spellray.metrics import METRICS_FILE_ENV
from spellray.ports import free_port
from spellray.runner.launch.rank_env import iface_for
from spellray.runner.rank_site import pythonpath_with_rank_site
from spellray.runner.workdir import WorkDir
from spellray.storage.store import Storage

# Lines of a rank's output kept to explain its failure.
TAIL_LINES = 10


class LineBuffer:
    """Stands in for the runner's LogSink inside a rank: keeps the output until the runner
    collects it (and the last lines, for a failure's reason)."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def write(self, data: bytes) -> None:
        with self._lock:
            self._lines.append(data)
            self.tail.append(data.decode(errors="replace").rstrip("\n"))

    def line(self, text: str) -> None:
        self.write(f"{text}\n".encode())

    def drain(self) -> list[bytes]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


class RankProcess:
    def __init__(self, run_id: int, storage_uri: str, record: dict, rank: int) -> None:
        from spellray.settings import get_settings

        self.record, self.rank = record, rank
        self.log = LineBuffer()
        folder = Path(tempfile.mkdtemp(prefix=f"spellray-run-{run_id}-rank-{rank}-"))
        self.workdir = WorkDir(folder, Storage(storage_uri, get_settings()), run_id, self.log)
        self.workdir.announce = rank == 0  # one note about /spell per run, not per rank
        if rank == 0:  # rank 0's files are the run's own (runs/<id>/, not rank-K/)
            self.workdir.live_folder = record.get("tensorboard_dir")
        else:
            self.workdir.output_prefix = f"rank-{rank}/"
        # Auto-resume: every rank's files saved as it goes, so losing any node loses at most
        # an interval of each rank's work, and a resumed run's rank K starts with rank K's.
        self.workdir.sync_outputs = bool(record.get("auto_resume"))
        self.metrics_file = self.workdir.metrics_file
        self._metrics_offset = 0
        self.exit_code: int | None = None
        self._thread: threading.Thread | None = None
        # Hardware stats samples of this rank, kept until the runner collects them.
        self._samples: list[dict] = []
        self._samples_lock = threading.Lock()

    def where(self) -> dict[str, str | None]:
        """This rank's node address, and the interface holding it (gloo binds there)."""
        import ray

        ip = ray.util.get_node_ip_address()
        return {"ip": ip, "iface": iface_for(ip)}

    def free_port(self) -> int:
        """A port free on this node now, for torch.distributed's store (rank 0 serves it)."""
        return free_port(host="")

    def prepare(self) -> None:
        self.workdir.fetch_code(self.record)
        if self.record.get("resumed_from"):
            self.workdir.restore_outputs(self.record["resumed_from"])
        self.workdir.mount(self.record.get("mounts") or [])

    def start(self, command: str, env: dict[str, str], stats_interval: float = 0.0) -> None:
        """Start the command in the background; ``poll`` reports on it. With
        ``stats_interval``, its hardware is sampled that often and once at its end."""
        if METRICS_FILE_ENV in env:  # rank 0 sends the run's metrics: to a file on its node
            self.metrics_file.touch()
            env = {**env, METRICS_FILE_ENV: str(self.metrics_file)}
        # Every Python of the rank exits cleanly from torch.distributed: see rank_site.
        env = {**env, "PYTHONPATH": pythonpath_with_rank_site(
            env.get("PYTHONPATH", os.environ.get("PYTHONPATH", "")))}

        sampler = None
        if stats_interval:
            from spellray.runner.hardware_stats import HardwareSampler

            sampler = HardwareSampler(self.workdir.command.pid, self._samples_append,
                                      stats_interval, rank=self.rank)

        def run() -> None:
            try:
                self.exit_code = self.workdir.run(command, env)
            finally:
                if sampler is not None:  # the last sample is in before poll sees the end
                    sampler.close()

        self._thread = threading.Thread(target=run, name=f"rank-{self.rank}", daemon=True)
        self._thread.start()

    def _samples_append(self, sample: dict) -> None:
        with self._samples_lock:  # the sampler's thread adds, poll() takes them
            self._samples.append(sample)

    def poll(self) -> tuple[list[bytes], bytes, list[dict], int | None]:
        """(new output lines, new metric lines, new hardware stats samples, the exit code
        once the command ended)."""
        done = self._thread is not None and not self._thread.is_alive()
        with self._samples_lock:
            samples, self._samples = self._samples, []
        return self.log.drain(), self._new_metrics(), samples, \
            self.exit_code if done else None

    def _new_metrics(self) -> bytes:
        if not self.metrics_file.exists():
            return b""
        with self.metrics_file.open("rb") as source:
            source.seek(self._metrics_offset)
            data = source.read()
        data = data[: data.rfind(b"\n") + 1]  # whole lines only
        self._metrics_offset += len(data)
        return data

    def last_lines(self) -> list[str]:
        return list(self.log.tail)

    def terminate(self, grace: float) -> None:
        """SIGTERM the command's process group; SIGKILL it if it is still there after
        ``grace`` seconds."""
        self.workdir.command.stop()
        if self._thread is None:
            return
        self._thread.join(grace)
        if self._thread.is_alive():
            self.workdir.command.kill()
            self._thread.join(grace)

    def save_outputs(self, prefix: str) -> list[str]:
        """Upload what the command made or changed, under ``runs/<id>/<prefix>``; the paths
        as the run's outputs list them."""
        return self.workdir.save_outputs(prefix)

    def cleanup(self) -> None:
        self.workdir.cleanup()

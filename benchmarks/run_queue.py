"""Many runs at once: spellray's queue against Ray's Jobs SDK given them all at once.

Usage: python benchmarks/run_queue.py [--runs N]

(Not `queue.py`, the issue's name for it: a file of that name beside the other benchmarks
would stand in for the standard library's `queue` that Ray imports, and break them all.)

Starts a private 2-CPU Ray head and spellray server, then submits N trivial runs
(`echo hi`, one CPU each) two ways, one after the other on the same head: through Ray's
Jobs SDK all at once with entrypoint_num_cpus=1 (as spellray's runs ask), and through the
spellray SDK (`spell run -b` in a loop, minus process start-up). For each: the time until
all have ended, how many did not complete, and the peak memory (RSS sum) of the head's
processes above the idle head's, sampled every 0.2 s. The last line is the time ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down
from ray.job_submission import JobSubmissionClient

from spellray.client import Client

SAMPLE_INTERVAL = 0.2
POLL_INTERVAL = 1.0


def ray_rss(head: int) -> int:
    """The RSS sum of the head and every process under it (raylet, GCS, workers, ...)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(head)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # ended meanwhile
                total += process.memory_info().rss
    return total


class PeakMemory:
    """Samples ray_rss in a thread until stopped; the peak above the idle baseline."""

    def __init__(self, head: int) -> None:
        self.head = head
        self.idle = min(ray_rss(head) for _ in range(5))
        self.peak = self.idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.peak = max(self.peak, ray_rss(self.head))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak - self.idle


def measured(head: int, name: str, run: Callable[[], int]) -> tuple[float, int, int]:
    """(seconds until all ended, how many did not complete, peak bytes above idle)."""
    memory = PeakMemory(head)
    start = time.perf_counter()
    lost = run()
    elapsed = time.perf_counter() - start
    above = memory.stop()
    print(f"{name:<16} {elapsed:8.1f} s   not complete {lost:4d}   "
          f"peak memory above idle {above / 2**20:8.0f} MiB", flush=True)
    return elapsed, lost, above


def settle() -> None:
    """Let the head's finished workers go before the next idle baseline."""
    time.sleep(10)


def steady_head(workdir: Path, attempts: int = 3) -> tuple[int, str]:
    """A private 2-CPU head whose node is up. On a loaded machine `ray start` may answer on
    its dashboard, then give up on its raylet (Ray's fixed 30 s) and exit: start again."""
    from ray.util.state import list_nodes

    from spellray.cluster.local import RAY_STOP_GRACE, stop_process_group

    for attempt in range(attempts):
        head, address = start_ray_head(workdir / f"head-{attempt}", num_cpus=2)
        while psutil.pid_exists(head) and \
                psutil.Process(head).status() != psutil.STATUS_ZOMBIE:
            with contextlib.suppress(Exception):  # the dashboard may not answer yet
                if any(n.state == "ALIVE" for n in list_nodes(address=address)):
                    return head, address
            time.sleep(1)
        stop_process_group(head, timeout=RAY_STOP_GRACE)
    raise RuntimeError(f"no Ray head came up in {attempts} attempts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs each way")
    runs = parser.parse_args().runs

    workdir, project, env = bench_workdir()
    head: int | None = None
    try:
        head, address = steady_head(workdir)
        env["SPELLRAY_RAY_ADDRESS"] = address
        print(f"Ray head at {address}; {runs} runs each way", flush=True)
        started = subprocess.run([*SPELL_CLI, "server", "start"], env=env,
                                 capture_output=True, text=True, timeout=300, check=False)
        if started.returncode != 0:
            raise RuntimeError(f"spell server start failed: {started.stderr}")
        home = Path(env["SPELLRAY_HOME"])
        port = json.loads((home / "server.json").read_text())["port"]
        client = Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())
        jobs = JobSubmissionClient(address)
        # One of each first: worker pools and caches warm for both.
        list(client.runs.follow(client.runs.new("echo hi", code_dir=project).id))
        warm = jobs.submit_job(entrypoint="echo hi", entrypoint_num_cpus=1)
        while not jobs.get_job_status(warm).is_terminal():
            time.sleep(0.2)
        settle()

        def raw() -> int:
            ids = {jobs.submit_job(entrypoint="echo hi", entrypoint_num_cpus=1)
                   for _ in range(runs)}
            while True:
                mine = [j for j in jobs.list_jobs() if j.submission_id in ids]
                if all(j.status.is_terminal() for j in mine):
                    return sum(j.status.value != "SUCCEEDED" for j in mine)
                time.sleep(POLL_INTERVAL)

        def spellray() -> int:
            ids = {client.runs.new("echo hi", code_dir=project).id for _ in range(runs)}
            while True:
                mine = [r for r in client.runs.list(0, None).runs if r.id in ids]
                if all(r.status.is_terminal for r in mine):
                    return sum(r.status.value != "complete" for r in mine)
                time.sleep(POLL_INTERVAL)

        raw_time, raw_lost, raw_memory = measured(head, "raw Jobs SDK", raw)
        settle()
        spell_time, spell_lost, spell_memory = measured(head, "spellray queue", spellray)
        print(f"not complete: spellray {spell_lost}, raw Jobs SDK {raw_lost} of {runs}")
        print(f"peak memory above idle, spellray / raw: "
              f"{spell_memory / max(raw_memory, 1):.2f}x")
        print(f"time for all {runs}, spellray / raw: {spell_time / raw_time:.2f}x")
    finally:
        tear_down(env, head, workdir)


if __name__ == "__main__":
    sys.exit(main())

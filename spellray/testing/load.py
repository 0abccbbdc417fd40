"""Clients that poll a spellray server the way `spell ps` and `spell logs` do, timing every
answer: the load test (tests/chaos/test_load.py) and its benchmark (benchmarks/
server_load.py) share them.

Each client is a thread with its own SDK ``Client`` (its own HTTP connection, as each
`spell` process has): it lists the newest runs (`spell ps`: GET /api/runs?limit=50), then
reads the whole log of one of them (`spell logs N`: GET /api/runs/N/logs, no long poll),
then waits ``interval`` seconds, until stopped.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from spellray.client import Client

# Which run's log a client reads: one of the newest in its last listing (the runs someone
# watching would open).
NEWEST = 10
T = TypeVar("T")


@dataclass
class Timings:
    """Every request's answer time in seconds, per route, and the failures' messages."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {"ps": [], "logs": []})
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, route: str, seconds: float, failure: str | None = None) -> None:
        with self.lock:
            self.seconds[route].append(seconds)
            if failure is not None:
                self.failures.append(f"{route}: {failure}")

    def all(self) -> list[float]:
        return [s for values in self.seconds.values() for s in values]

    @property
    def requests(self) -> int:
        return len(self.all())


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank, so p99 of 100 values is the 99th)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * fraction // 1)))
    return ordered[int(rank) - 1]


def summary(timings: Timings) -> str:
    """``requests N, failed F, p50 X ms, p99 Y ms, max Z ms``."""
    values = timings.all()
    if not values:
        return "requests 0, failed 0"
    return (f"requests {len(values)}, failed {len(timings.failures)}, "
            f"p50 {statistics.median(values) * 1000:.0f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms")


def per_route(timings: Timings) -> str:
    """p50 and p99 of each route, to say which one is slow."""
    return "; ".join(
        f"{route}: {len(values)} requests, p50 {statistics.median(values) * 1000:.0f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:.0f} ms"
        for route, values in timings.seconds.items() if values)


class Pollers:
    """``clients`` threads polling ``url`` until ``stop()``; their timings in ``timings``."""

    def __init__(self, url: str, token: str, clients: int, interval: float,
                 seed: int = 0) -> None:
        self.url, self.token, self.interval = url, token, interval
        self.timings = Timings()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(random.Random(seed + n),),
                                          name=f"poller-{n}", daemon=True)
                         for n in range(clients)]

    def start(self) -> Pollers:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Timings:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        return self.timings

    def _timed(self, route: str, call: Callable[[], T]) -> T | None:
        began = time.perf_counter()
        try:
            result = call()
        except Exception as exc:  # a failed request is counted, never fatal to the poller
            self.timings.add(route, time.perf_counter() - began, f"{type(exc).__name__}: {exc}")
            return None
        self.timings.add(route, time.perf_counter() - began)
        return result

    def _poll(self, rng: random.Random) -> None:
        client = Client(self.url, self.token)
        # Clients start spread over one interval, not all in the same millisecond.
        self._stop.wait(rng.uniform(0, self.interval))
        while not self._stop.is_set():
            listing = self._timed("ps", lambda: client.runs.list(50))
            ids = [run.id for run in listing.runs[:NEWEST]] if listing is not None else []
            if ids:
                run_id = rng.choice(ids)
                self._timed("logs", lambda: client.runs.logs(run_id))  # noqa: B023 - called at once
            self._stop.wait(self.interval)

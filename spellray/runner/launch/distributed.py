"""`spell run --distributed N`: the runner (a Ray job driver holding no resources itself)
reserves a placement group of N bundles of the machine type, starts one RankProcess actor per
bundle, and runs the user's command in each with the torch.distributed variables and, where
Horovod is installed, its gloo launcher's. Every rank's output goes into the run's log as
`[rank K] ...`; rank 0's outputs are the run's, rank K's go under `rank-K/`. If a rank fails,
the others are stopped and the run fails with that rank's exit code and last lines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spellray.runner.command import TERM_GRACE
from spellray.runner.launch.placement import bundle_for, describe, shortage, strategy
from spellray.runner.launch.rank_env import assign_ranks, horovod_env, horovod_plan, torch_env
from spellray.runner.workdir import Log

if TYPE_CHECKING:
    from ray.util.placement_group import PlacementGroup

# How often the runner asks the ranks for output, and the placement group for progress.
POLL_SECONDS = 0.2
# How long a run waits for the cluster to free room for its ranks before it fails.
# SPELLRAY_DISTRIBUTED_WAIT_SECONDS overrides (a cluster that autoscales needs longer).
DEFAULT_WAIT_SECONDS = 600.0


def wait_limit() -> float:
    return float(os.environ.get("SPELLRAY_DISTRIBUTED_WAIT_SECONDS", DEFAULT_WAIT_SECONDS))


class DistributedLaunch:
    """The driver's side of a distributed run (a Launch: see launch/__init__.py)."""

    def __init__(self, record: dict, storage_uri: str, log: Log, metrics_file: Path,
                 stopped: Callable[[], bool], report: Callable[[str, str], None]) -> None:
        """``record``: the run's run.json; ``log``: the run's log, every rank's lines go
        there; ``metrics_file``: where rank 0's metrics go (the runner forwards them);
        ``stopped``: whether the run was stopped (every wait gives up then); ``report``: a
        status report (status, reason)."""
        self.record = record
        self.storage_uri = storage_uri
        self.log = log
        self.metrics_file = metrics_file
        self.stopped = stopped
        self.report = report
        self.count: int = record["distributed"]
        machine_type = record["machine"]
        self.bundle = bundle_for(machine_type.get("num_cpus", 1), machine_type.get("num_gpus", 0),
                                 machine_type.get("resources") or {})
        self.group: PlacementGroup | None = None
        self.actors: list[Any] = []
        self._rendezvous: Any = None
        self.failure_reason: str | None = None
        self.interrupted_reason: str | None = None
        self.rank_nodes: dict[int, str] = {}  # rank -> the Ray node it runs on
        self.lost_ranks: set[int] = set()  # their nodes are gone: nothing to stop or save
        self._ended = False
        # Where every rank's hardware stats samples go (tagged by rank), and how often.
        self._stats: tuple[Callable[[dict[str, Any]], None], float] | None = None

    # -- reserve --------------------------------------------------------------------------
    def reserve(self) -> str | None:
        """Wait (bounded) for the placement group, telling the log and the run's status what
        is missing meanwhile. Returns the reason to fail the run, None once placed (or if
        the run was stopped while waiting: the runner knows)."""
        import ray
        from ray.util.placement_group import placement_group

        if not self.bundle:
            return "--distributed needs a machine type that asks for some resources"
        # RAY_ADDRESS, set by Ray's job supervisor, names this job's cluster (each head
        # spellray starts has its own temp dir: see cluster/local.py ray_temp_dir).
        ray.init(log_to_driver=False, logging_level="ERROR")
        alive = [n for n in ray.nodes() if n.get("Alive")]
        placing = strategy(len(alive))
        self.group = placement_group([dict(self.bundle)] * self.count, strategy=placing)
        self._log(f"reserving {self.count} x {describe(self.bundle)} ({placing})")
        deadline, told = time.monotonic() + wait_limit(), None
        ready = self.group.ready()
        while not self.stopped():
            done, _ = ray.wait([ready], timeout=1.0 if told is None else 2.0)
            if done:
                self._log(f"{self.count} rank(s) placed")
                return None
            missing = shortage(self.count, self.bundle,
                               [n["Resources"] for n in ray.nodes() if n.get("Alive")],
                               ray.available_resources())
            if missing.never:
                return missing.message
            if missing.message != told:  # say it once per change, not every poll
                told = missing.message
                self._log(missing.message)
                self.report("building", missing.message)
            if time.monotonic() > deadline:
                return (f"gave up after {wait_limit():g} s: {missing.message} "
                        "(SPELLRAY_DISTRIBUTED_WAIT_SECONDS sets how long to wait)")
        return None

    # -- run ------------------------------------------------------------------------------
    def run(self, command: str, env: dict[str, str]) -> int:
        """Start every rank and follow them to the end; the run's exit code."""
        try:
            return self._run(command, env)
        finally:
            self._ended = True

    def sample_stats(self, record: Callable[[dict[str, Any]], None], interval: float) -> None:
        """Each rank samples its own process tree and node; the runner relays the samples."""
        self._stats = (record, interval)

    def stop(self) -> None:
        pass  # nothing to do in a signal handler: the waits poll ``stopped``, then end the ranks

    def ended(self) -> bool:
        return self._ended

    def _run(self, command: str, env: dict[str, str]) -> int:
        import ray
        from ray.util.placement_group import placement_group_table
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from spellray.runner.launch.rank_process import RankProcess

        assert self.group is not None
        nodes = placement_group_table(self.group)["bundles_to_node_id"]
        slots = assign_ranks([nodes[i] for i in range(self.count)])
        self.rank_nodes = {s.rank: s.node_id for s in slots}
        actor_class = ray.remote(RankProcess)
        options = {"num_cpus": self.bundle.get("CPU", 0), "num_gpus": self.bundle.get("GPU", 0),
                   "resources": {k: v for k, v in self.bundle.items() if k not in ("CPU", "GPU")},
                   "max_concurrency": 2}
        self.actors = [actor_class.options(**options, scheduling_strategy=(
            PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=s.bundle)))
            .remote(self.record["id"], self.storage_uri, self.record, s.rank)
            for s in slots]
        places = self._get([a.where.remote() for a in self.actors])
        port = self._get(self.actors[0].free_port.remote())
        if places is None or port is None or self._get(
                [a.prepare.remote() for a in self.actors]) is None:
            return self._stop_all(None)
        hvd = self._horovod_envs(slots, places)
        starts = []
        for slot, actor, place in zip(slots, self.actors, places, strict=True):
            # Only rank 0 gets the metrics and MLflow variables: one rank reports.
            rank_env = {**(env if slot.rank == 0 else {}),
                        **torch_env(slot, places[0]["ip"], port), **hvd[slot.rank],
                        "SPELLRAY_RANK_NODE_IP": place["ip"]}
            starts.append(actor.start.remote(
                command, rank_env, self._stats[1] if self._stats is not None else 0.0))
        self._get(starts)
        self._log(f"started {self.count} rank(s) on {slots[-1].node_count} node(s); "
                  f"rank 0 at {places[0]['ip']}:{port}")
        return self._follow()

    def _horovod_envs(self, slots: list, places: list[dict]) -> list[dict[str, str]]:
        """Horovod's gloo launcher variables per rank, with its rendezvous server started
        here (as horovodrun does); none where horovod is not installed."""
        if importlib.util.find_spec("horovod") is None:
            return [{} for _ in slots]
        import ray
        from horovod.runner.http.http_server import RendezvousServer

        plan = horovod_plan(slots)
        self._rendezvous = RendezvousServer()
        port = self._rendezvous.start()
        self._rendezvous.init(plan)
        here = ray.util.get_node_ip_address()
        return [horovod_env(info, here, port, place["iface"])
                for info, place in zip(plan, places, strict=True)]

    def _follow(self) -> int:
        """Relay output until every rank ended; stop the rest when one fails or the run is
        stopped."""
        import ray

        codes: dict[int, int] = {}
        failed: int | None = None
        while len(codes) < self.count:
            if self.stopped() and failed is None:
                return self._stop_all(codes)
            try:
                polls = ray.get([self.actors[r].poll.remote() for r in range(self.count)
                                 if r not in codes])
            except ray.exceptions.RayActorError:  # a rank's node went: the run is interrupted
                return self._lost()
            waiting = [r for r in range(self.count) if r not in codes]
            for rank, (lines, metrics, stats, code) in zip(waiting, polls, strict=True):
                self._relay(rank, lines)
                self._relay_stats(stats)
                if metrics:
                    with self.metrics_file.open("ab") as sink:
                        sink.write(metrics)
                if code is not None:
                    codes[rank] = code
                    if code != 0 and failed is None:
                        failed = rank
            if failed is not None and len(codes) < self.count:
                return self._fail(failed, codes[failed])
            if len(codes) < self.count:
                time.sleep(POLL_SECONDS)
        return 0

    def _fail(self, rank: int, code: int) -> int:
        import ray

        last = ray.get(self.actors[rank].last_lines.remote())
        self._log(f"rank {rank} exited with code {code}; stopping the other ranks")
        self._stop_all(None)
        tail = " | ".join(line for line in last[-3:] if line.strip())
        self.failure_reason = (f"rank {rank} exited with code {code}"
                                      + (f"; its last lines: {tail}" if tail else ""))
        return code

    def _lost(self) -> int:
        """A rank's actor died (its node was lost): name the rank, node and machine type,
        and end the ranks still alive."""
        import ray

        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        gone = [r for r, node in sorted(self.rank_nodes.items()) if node not in alive]
        rank = gone[0] if gone else 0
        node = self.rank_nodes.get(rank, "unknown")
        self.interrupted_reason = (f"rank {rank}'s {self.record.get('machine_type', '')} "
                                   f"machine (node {node}) was lost")
        self._log(f"{self.interrupted_reason}; stopping the other ranks")
        self.lost_ranks = {r for r, node in self.rank_nodes.items() if node not in alive}
        self._stop_all(None)
        return 143

    def _stop_all(self, codes: dict[int, int] | None) -> int:
        """SIGTERM every rank's command, SIGKILL after the grace; their last output too."""
        import ray

        live = [(r, a) for r, a in enumerate(self.actors) if r not in self.lost_ranks]
        ray.get([a.terminate.remote(TERM_GRACE) for _, a in live])
        for rank, actor in live:
            lines, _, stats, _ = ray.get(actor.poll.remote())
            self._relay(rank, lines)
            self._relay_stats(stats)
        return 143 if codes is None else max(codes.values(), default=143)

    def _get(self, refs: Any) -> Any:
        """ray.get that gives up (None) when the run is stopped meanwhile."""
        import ray

        pending = refs if isinstance(refs, list) else [refs]
        while not self.stopped():
            done, _ = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            if len(done) == len(pending):
                return ray.get(refs)
        return None

    # -- end ------------------------------------------------------------------------------
    def save_outputs(self) -> list[str]:
        """Rank 0's outputs are the run's; rank K's go under rank-K/."""
        import ray

        if not self.actors:
            return []
        saved = ray.get([a.save_outputs.remote("" if rank == 0 else f"rank-{rank}/")
                         for rank, a in enumerate(self.actors)
                         if rank not in self.lost_ranks])
        return [path for paths in saved for path in paths]

    def close(self) -> None:
        """End the ranks (their commands too) and free the placement group."""
        import ray
        from ray.util.placement_group import remove_placement_group

        for actor in self.actors:
            with contextlib.suppress(Exception):  # a dead actor has nothing left to clean
                ray.get(actor.cleanup.remote(), timeout=30)
            ray.kill(actor)
        self.actors = []
        if self._rendezvous is not None:
            self._rendezvous.stop()
            self._rendezvous = None
        if self.group is not None:
            remove_placement_group(self.group)
            self.group = None

    def _relay(self, rank: int, lines: list[bytes]) -> None:
        for line in lines:
            self.log.write(f"[rank {rank}] ".encode() + line
                           + (b"" if line.endswith(b"\n") else b"\n"))

    def _relay_stats(self, samples: list[dict[str, Any]]) -> None:
        if self._stats is not None:
            for sample in samples:
                self._stats[0](sample)

    def _log(self, text: str) -> None:
        self.log.line(f"spellray: {text}")

"""`spell cluster status`: nodes per machine type, the runs on them, and their cost so far.

Ray is the source of truth for nodes (its state API) and for where each job's driver runs;
the DB says which run is which job. A node's machine type is the spellray-machine:<NAME>
resource it advertises (see cluster/launcher_config.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from spellray.cluster.launcher_config import MACHINE_RESOURCE_PREFIX
from spellray.errors import SpellrayError
from spellray.schemas import ACTIVE_STATUSES, ClusterNode, ClusterStatus, MachineType
from spellray.server import db
from spellray.server.context import ServerContext
from spellray.server.ray_capacity import LiveResources, RayCapacity


def node_machine_type(resources: dict[str, float], is_head: bool) -> str:
    for key, amount in resources.items():
        if key.startswith(MACHINE_RESOURCE_PREFIX) and amount > 0:  # 0: retyped away
            return key[len(MACHINE_RESOURCE_PREFIX):]
    return "head" if is_head else "-"


def _moment(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, timezone.utc) if ms else None


def node_cost(node: Any, machine_type: MachineType | None,
              now: datetime) -> tuple[datetime | None, datetime | None, float, float | None]:
    """Start, end, instance hours so far, and their price (None without a table price)."""
    started, ended = _moment(node.start_time_ms), _moment(node.end_time_ms)
    alive = node.state == "ALIVE"
    hours = ((now if alive or ended is None else ended) - started).total_seconds() / 3600 \
        if started else 0.0
    price = machine_type.price_per_hour if machine_type else None
    return started, None if alive else ended, max(hours, 0.0), \
        None if price is None else hours * price


class ClusterService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def _runs_by_submission(self) -> dict[str, int]:
        with self.ctx.sessions() as session:
            rows = session.execute(select(db.Run.id, db.Run.ray_submission_id).where(
                db.Run.status.in_([s.value for s in ACTIVE_STATUSES]),
                db.Run.ray_submission_id.is_not(None)))
            return {submission: run_id for run_id, submission in rows}

    def status_now(self, capacity: RayCapacity) -> ClusterStatus:
        """The status with each live node's resources as its raylet says now (its free ones,
        for utilization), or as Ray's node table has them when the GCS does not answer."""
        try:
            live = capacity.live()
        except SpellrayError:
            live = None
        return self.status(live)

    def status(self, live: dict[str, LiveResources] | None = None) -> ClusterStatus:
        """``live``: RayCapacity.live(); without it, totals as the nodes started."""
        now = datetime.now(timezone.utc)
        runs = self._runs_by_submission()
        drivers: dict[str, list[int]] = {}
        for submission, job in self.ctx.ray.jobs().items():
            if submission in runs and job.driver_node_id:
                drivers.setdefault(job.driver_node_id, []).append(runs[submission])
        nodes = []
        for node in self.ctx.ray.nodes():
            raylet = (live or {}).get(node.node_id) if node.state == "ALIVE" else None
            total = raylet.total if raylet else dict(node.resources_total or {})
            machine = node_machine_type(total, node.is_head_node)
            started, ended, hours, cost = node_cost(
                node, self.ctx.machine_types.get(machine), now)
            nodes.append(ClusterNode(
                node_id=node.node_id, ip=node.node_ip, is_head=node.is_head_node,
                alive=node.state == "ALIVE", machine_type=machine, started_at=started,
                ended_at=ended, hours=hours, cost=cost,
                runs=sorted(drivers.get(node.node_id, [])),
                resources_total=total, resources_free=raylet.free if raylet else None))
        placed = {run for node in nodes for run in node.runs}
        nodes.sort(key=lambda n: (not n.is_head, n.machine_type, not n.alive, n.node_id))
        return ClusterStatus(ray_address=self.ctx.ray.address,
                             machine_types=list(self.ctx.machine_types.values()), nodes=nodes,
                             cost=sum(n.cost or 0 for n in nodes),
                             unplaced_runs=sorted(set(runs.values()) - placed))

"""The console's cluster page: nodes grouped by machine type, the runs and model server
replicas on each, CPU/GPU used of total (Ray's GCS, as the run queue reads it), and the cost
so far, from the ClusterService `spell cluster status` shows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from spellray.errors import SpellrayError
from spellray.schemas import ClusterNode
from spellray.server.console.render import render
from spellray.server.ray_capacity import capacity_of
from spellray.server.services.cluster import ClusterService
from spellray.server.services.model_servers import ModelServerService

router = APIRouter()
# Resources shown as used of total, in this order.
SHOWN = ("CPU", "GPU")


def usage(node: ClusterNode) -> list[dict[str, Any]]:
    """Each shown resource the node has: used of total (used None when not known)."""
    shown = []
    for name in SHOWN:
        total = node.resources_total.get(name, 0)
        if not total:
            continue
        free = None if node.resources_free is None else node.resources_free.get(name, 0.0)
        used = None if free is None else max(total - free, 0.0)
        shown.append({"name": name, "used": used, "total": total,
                      "percent": None if used is None else round(100 * used / total)})
    return shown


def replicas_by_node(details: dict[str, Any] | None) -> dict[str, list[str]]:
    """node id -> the model servers with a replica there (Serve's own view)."""
    found: dict[str, list[str]] = {}
    for name, app in ((details or {}).get("applications") or {}).items():
        for deployment in (app.get("deployments") or {}).values():
            for replica in deployment.get("replicas") or []:
                if replica.get("node_id"):
                    found.setdefault(replica["node_id"], []).append(name)
    return found


@router.get("/cluster", response_class=HTMLResponse)
def cluster_page(request: Request) -> HTMLResponse:
    ctx = request.app.state.server.ctx
    status = ClusterService(ctx).status_now(capacity_of(request.app.state, ctx.settings))
    try:
        details = ModelServerService(ctx).serve.details()
    except SpellrayError:
        details = None
    groups: dict[str, list[ClusterNode]] = {}
    for node in status.nodes:
        groups.setdefault(node.machine_type, []).append(node)
    prices = {t.name: t.price_per_hour for t in status.machine_types}
    return render(request, "cluster.html", {
        "status": status, "groups": groups, "prices": prices, "usage": usage,
        "replicas": replicas_by_node(details),
        "priced": any(p is not None for p in prices.values())})

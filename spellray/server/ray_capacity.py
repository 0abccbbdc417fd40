"""What the run queue asks Ray's GCS: each live node's free resources now, and (for machine
types that can grow) the autoscaler's standing request for the queued runs' shapes.

The GCS, not the dashboard: its resource view is what the raylets report within a beat,
where the dashboard's cluster status is the autoscaler's report, seconds old. The server
is given only the dashboard's address; a head on this machine tells its GCS address on its
dashboard's command line, else the GCS is on the dashboard's host at SPELLRAY_RAY_GCS_PORT.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from typing import Any, NamedTuple
from urllib.parse import urlparse

from spellray.errors import RayUnavailable
from spellray.settings import Settings

log = logging.getLogger(__name__)

# Seconds one GCS call may take before the pass counts Ray as unreachable.
GCS_TIMEOUT = 10
# Ray's GCS client ends its whole process once the GCS has been unreachable for
# gcs_rpc_server_reconnect_timeout_s (60 s) with a call pending: in the server, that is the
# server gone whenever the Ray head is down a minute (tests/e2e/test_resilience.py caught
# it). The server outlives Ray (DESIGN.md): its client waits as long as it takes, and each
# call gives up after GCS_TIMEOUT instead, so a pass says "Ray is unreachable" and goes on.
GCS_CLIENT_CONFIG = {"RAY_gcs_rpc_server_reconnect_timeout_s": str(10 * 365 * 24 * 3600),
                     "RAY_gcs_server_request_timeout_seconds": str(GCS_TIMEOUT)}


def outlive_the_gcs() -> None:
    """Set, in this process and before its first GCS client, what GCS_CLIENT_CONFIG says
    (Ray reads its config from the environment once per process)."""
    for name, value in GCS_CLIENT_CONFIG.items():
        os.environ.setdefault(name, value)


def _local_dashboard_gcs(port: int) -> str | None:
    """The --gcs-address of the dashboard process on this machine listening on ``port``."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        args = process.info.get("cmdline") or []
        if not any(a.endswith("dashboard/dashboard.py") for a in args[:3]) or \
                f"--port={port}" not in args:
            continue
        for arg in args:
            if arg.startswith("--gcs-address="):
                return arg.split("=", 1)[1]
    return None


def gcs_address(settings: Settings) -> str:
    address = urlparse(settings.ray_address)
    return _local_dashboard_gcs(address.port or 8265) or \
        f"{address.hostname}:{settings.ray_gcs_port}"


def resource_state(gcs: Any) -> Any:
    """The GCS's cluster resource state, within GCS_TIMEOUT (what Ray's
    ``autoscaler.v2.sdk.get_cluster_resource_state`` asks, which waits without end)."""
    from ray.core.generated.autoscaler_pb2 import GetClusterResourceStateReply

    reply = GetClusterResourceStateReply()
    reply.ParseFromString(gcs.get_cluster_resource_state(timeout_s=GCS_TIMEOUT))
    return reply.cluster_resource_state


class LiveResources(NamedTuple):
    total: dict[str, float]
    free: dict[str, float]


def capacity_of(state: Any, settings: Settings) -> RayCapacity:
    """One GCS client per app (kept on its ``state``): connecting is the slow part."""
    if getattr(state, "capacity", None) is None:
        state.capacity = RayCapacity(settings)
    return state.capacity


class RayCapacity:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The autoscaler's request last sent, so an unchanged queue sends nothing.
        self._requested: list[dict[str, float]] | None = None

    @cached_property
    def _gcs(self) -> Any:
        outlive_the_gcs()
        from ray._raylet import GcsClient

        try:
            return GcsClient(address=gcs_address(self.settings))
        except Exception as exc:
            raise RayUnavailable(f"Ray's GCS is unreachable ({exc}); set SPELLRAY_RAY_GCS_PORT "
                                 "to the head's --port") from exc

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except RayUnavailable:
            raise
        except Exception as exc:
            self.__dict__.pop("_gcs", None)  # the head may have restarted: reconnect
            raise RayUnavailable(f"Ray's GCS did not answer ({exc})") from exc

    def _resource_state(self) -> Any:
        return self._call(lambda: resource_state(self._gcs))

    def live(self) -> dict[str, LiveResources]:
        """Each live node's resources now (by node id, hex), as its raylet last said: its
        totals too, which Ray's node table keeps as they were at start (a host retyped by
        `spell cluster update` has new ones: cluster/host_types.py)."""
        from ray.core.generated.autoscaler_pb2 import NodeStatus

        state = self._resource_state()
        return {node.node_id.hex(): LiveResources(dict(node.total_resources),
                                                  dict(node.available_resources))
                for node in state.node_states
                if node.status in (NodeStatus.RUNNING, NodeStatus.IDLE)}

    def free(self) -> dict[str, dict[str, float]]:
        """Each live node's free resources (by node id, hex), as its raylet last said."""
        return {node_id: now.free for node_id, now in self.live().items()}

    def dead(self) -> set[str]:
        """The nodes (ids, hex) the GCS has declared dead; it keeps the last ones it lost."""
        from ray.core.generated.autoscaler_pb2 import NodeStatus

        state = self._resource_state()
        return {node.node_id.hex() for node in state.node_states
                if node.status == NodeStatus.DEAD}

    def request(self, bundles: list[dict[str, float]]) -> None:
        """What `ray.autoscaler.sdk.request_resources(bundles=...)` does, without a Ray
        driver in the server: the cluster should fit all these shapes at once. Replaces
        the last request; an empty list withdraws it."""
        if bundles == self._requested:
            return
        from ray._private.ray_constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        def send() -> None:
            if is_autoscaler_v2(fetch_from_server=True, gcs_client=self._gcs):
                from ray.autoscaler.v2.sdk import request_cluster_resources

                request_cluster_resources(gcs_address(self.settings), [
                    {"resources": b, "label_selector": {}} for b in bundles])
            else:  # v1 (the cluster launcher's): the monitor reads this key every pass
                self._gcs.internal_kv_put(AUTOSCALER_RESOURCE_REQUEST_CHANNEL,
                                          json.dumps(bundles).encode(), True, None,
                                          timeout=GCS_TIMEOUT)

        self._call(send)
        self._requested = bundles
        log.info("queue: asked the autoscaler for %d bundles", len(bundles))

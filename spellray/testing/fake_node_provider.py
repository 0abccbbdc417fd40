"""Ray's fake multi-node provider, with lost machines replaced as on a cloud.

Ray's FakeMultiNodeProvider keeps the tags the autoscaler gives a node it launches, status
"uninitialized" included, and with node updaters off (a fake node starts ready) nothing
ever marks it up to date. Ray's autoscaler (v1) terminates only up-to-date nodes whose
raylet stopped reporting (``terminate_unhealthy_nodes``), so a fake machine whose raylet
died stayed "pending" for ever: never terminated, never replaced, its slot of the type's
max machines taken. Here a node is up to date once made (it is: the provider started its
raylet), so the autoscaler terminates a lost one AUTOSCALER_HEARTBEAT_TIMEOUT_S (default
30) after the GCS last reported it alive, and makes another when the type's min machines
or the queue's request (reconcile/queue.py) asks for it: what a cloud cluster does with a
spot machine taken back (tests/chaos/test_spot.py).

Loaded by the head's autoscaler monitor as an ``external`` provider (fake_cluster.py).
"""

from __future__ import annotations

from typing import Any

from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider
from ray.autoscaler.tags import STATUS_UP_TO_DATE, TAG_RAY_NODE_STATUS


class FakeProviderReplacingLostNodes(FakeMultiNodeProvider):
    def create_node_with_resources_and_labels(self, node_config: dict[str, Any],
                                              tags: dict[str, str], count: int,
                                              resources: dict[str, float],
                                              labels: dict[str, str]) -> None:
        super().create_node_with_resources_and_labels(
            node_config, {**tags, TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE}, count, resources,
            labels)

"""What `spell cluster update` does on an on-prem head to the local provider's host list
(cluster/host_types.py register), on Ray's own state file format; retyping a running host is
shown on simulated hosts (tests/cluster_hosts/test_onprem_cluster.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ray.autoscaler._private.local.config import get_lock_path, get_state_path
from ray.autoscaler.tags import NODE_KIND_HEAD, NODE_KIND_WORKER, TAG_RAY_NODE_KIND

from spellray.cluster.host_types import register


def test_new_hosts_join_the_heads_host_list_and_running_ones_stay_as_they_are() -> None:
    name = f"host-types-{os.getpid()}"
    state, lock = Path(get_state_path(name)), Path(get_lock_path(name))
    try:
        # No list on the head: nothing is made (a new one would call running hosts free).
        said = register(name, "10.0.0.2", {"10.0.0.3": "CPU"})
        assert said is not None and "keeps no host list" in said and not state.exists()

        head = {"tags": {TAG_RAY_NODE_KIND: NODE_KIND_HEAD}, "state": "running"}
        worker = {"tags": {TAG_RAY_NODE_KIND: NODE_KIND_WORKER, "ray-user-node-type": "x"},
                  "state": "running"}
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"10.0.0.2": head, "10.0.0.3": worker}))
        assert register(name, "10.0.0.2", {"10.0.0.3": "big", "10.0.0.4": "CPU"}) is None
        assert json.loads(state.read_text()) == {
            "10.0.0.2": head, "10.0.0.3": worker,
            "10.0.0.4": {"tags": {TAG_RAY_NODE_KIND: NODE_KIND_WORKER}, "state": "terminated"}}
    finally:
        state.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)

"""The rank arithmetic and the waiting messages of --distributed, without a cluster."""

from __future__ import annotations

import importlib.util

import pytest

from spellray.runner.launch.placement import bundle_for, fits, shortage, strategy
from spellray.runner.launch.rank_env import assign_ranks, horovod_env, horovod_plan, torch_env


def test_ranks_are_grouped_by_node_in_order_of_appearance() -> None:
    slots = assign_ranks(["b", "a", "b", "a", "a"])
    assert [(s.rank, s.bundle, s.node_id, s.node_rank, s.local_rank, s.local_size)
            for s in slots] == [
        (0, 0, "b", 0, 0, 2), (1, 2, "b", 0, 1, 2),
        (2, 1, "a", 1, 0, 3), (3, 3, "a", 1, 1, 3), (4, 4, "a", 1, 2, 3)]
    assert {s.world_size for s in slots} == {5} and {s.node_count for s in slots} == {2}


def test_torch_env_of_a_rank() -> None:
    slot = assign_ranks(["n1", "n2"])[1]
    assert torch_env(slot, "10.0.0.1", 29500) == {
        "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "RANK": "1", "LOCAL_RANK": "0",
        "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1", "NODE_RANK": "1", "GROUP_RANK": "1"}


def test_horovod_env_is_what_horovodrun_gives_a_slot() -> None:
    if importlib.util.find_spec("horovod") is None:
        pytest.fail("horovod is not installed: run `bash scripts/install_horovod.sh`")
    slots = assign_ranks(["n1", "n1", "n2"])
    plan = horovod_plan(slots)
    env = horovod_env(plan[2], "10.0.0.1", 4000, "eth0")
    assert env["HOROVOD_RANK"] == "2" and env["HOROVOD_SIZE"] == "3"
    assert env["HOROVOD_LOCAL_RANK"] == "0" and env["HOROVOD_LOCAL_SIZE"] == "1"
    assert env["HOROVOD_CROSS_RANK"] == "1" and env["HOROVOD_CROSS_SIZE"] == "2"
    assert env["HOROVOD_HOSTNAME"] == "n2" and env["HOROVOD_GLOO_IFACE"] == "eth0"
    assert env["HOROVOD_GLOO_RENDEZVOUS_ADDR"] == "10.0.0.1"
    assert env["HOROVOD_GLOO_RENDEZVOUS_PORT"] == "4000"
    assert env["HOROVOD_CONTROLLER"] == env["HOROVOD_CPU_OPERATIONS"] == "gloo"
    assert "HOROVOD_GLOO_IFACE" not in horovod_env(plan[0], "10.0.0.1", 4000, None)


def test_bundle_strategy_and_fit() -> None:
    assert bundle_for(4, 0, {"accel": 1}) == {"CPU": 4.0, "accel": 1}
    assert strategy(1) == "PACK" and strategy(3) == "SPREAD"
    assert fits({"CPU": 4}, {"CPU": 8, "GPU": 1}) == 2
    assert fits({"CPU": 1, "GPU": 1}, {"CPU": 8}) == 0


def test_shortage_messages() -> None:
    nodes = [{"CPU": 8.0}, {"CPU": 2.0}]
    waiting = shortage(2, {"CPU": 4.0}, nodes, {"CPU": 3.0})
    assert not waiting.never
    assert waiting.message == ("waiting for 2 x {CPU: 4}: the cluster has 10 CPU (3 free) on "
                               "2 node(s); other runs hold the rest")
    never = shortage(3, {"CPU": 4.0}, nodes, {"CPU": 10.0})
    assert never.never and "its nodes can hold 2 at most" in never.message
    gpu = shortage(1, {"CPU": 1.0, "GPU": 1.0}, nodes, {"CPU": 10.0})
    assert gpu.never and "0 GPU (0 free)" in gpu.message and "no node can hold even one" \
        in gpu.message

"""A run whose node died ends `interrupted`, its reason naming the node and machine type
(the whole path on a real fake cluster: tests/chaos/test_node_faults.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from spellray.server.reconcile.runs import _node_death, _on_dead_node

# The end of what Ray 2.x says when a job's supervisor actor died with its node.
DUMP = ("Job supervisor actor died: The actor died unexpectedly before finishing this task.\n"
        "\tclass_name: JobSupervisor\n\tactor_id: 3f2a\n"
        "The actor is dead because its node has died. Node Id: 9c1e0f\n"
        "\tthe actor's node was terminated unexpectedly: health check failed")


def _job(message: str, driver_node_id: str | None = None, status: str = "FAILED") -> Any:
    return SimpleNamespace(message=message, driver_node_id=driver_node_id,
                           status=SimpleNamespace(value=status))


def test_a_dead_node_is_named_with_the_machine_type_in_one_line() -> None:
    reason = _node_death(_job(DUMP), "T4-spot")
    assert reason is not None
    assert reason.startswith("the T4-spot machine it ran on (node 9c1e0f) was lost: ")
    assert reason.endswith("health check failed")
    assert "\n" not in reason


def test_without_a_node_id_the_driver_node_is_named() -> None:
    reason = _node_death(_job("x\nThe actor is dead because its node has died.", "ab12"), "CPU")
    assert reason is not None and "(node ab12)" in reason


def test_another_failure_is_no_node_death() -> None:
    assert _node_death(_job("Job entrypoint command failed with exit code 1"), "CPU") is None
    assert _node_death(_job(""), "CPU") is None


def test_a_running_job_on_a_node_the_gcs_declared_dead_is_a_lost_machine() -> None:
    """Said from the GCS's verdict, before Ray's job manager fails the job (up to a second
    later): the reconciler watches for dead nodes while runs are active."""
    reason = _on_dead_node(_job("", "ab12", "RUNNING"), "T4-spot", {"ab12", "cd34"})
    assert reason == ("the T4-spot machine it ran on (node ab12) was lost: Ray's GCS "
                      "declared the node dead")
    assert _on_dead_node(_job("", "ab12", "RUNNING"), "T4-spot", {"cd34"}) is None
    # Pending: not placed yet, its driver node says nothing; ended: the job list tells.
    assert _on_dead_node(_job("", "ab12", "PENDING"), "T4-spot", {"ab12"}) is None
    assert _on_dead_node(_job("", "ab12", "SUCCEEDED"), "T4-spot", {"ab12"}) is None
    assert _on_dead_node(_job("", None, "RUNNING"), "T4-spot", {"ab12"}) is None

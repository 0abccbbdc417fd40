"""Which refusals of a submission the server tries again (server/ray_jobs.py)."""

from __future__ import annotations

from spellray.server.ray_jobs import _transient


def test_a_starting_head_and_a_dashboard_500_are_tried_again() -> None:
    assert _transient("No available agent to submit job, please try again later.")
    assert _transient("Request failed with status code 500: Traceback ... Server disconnected")
    assert _transient("Request failed with status code 503: Service Unavailable")


def test_real_refusals_are_final() -> None:
    assert not _transient("Request failed with status code 400: runtime_env is invalid")
    assert not _transient("Request failed with status code 500: Job with submission_id "
                          "spellray-x-run-1 already exists.")
    assert not _transient("entrypoint_num_cpus must be a number")

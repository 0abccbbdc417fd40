"""A huge grid costs only what it runs: trial runs are made as Tune starts them, and the
search holds Ray objects (placement groups, actors) for the trials in flight only."""

from __future__ import annotations

from pathlib import Path

from ray.util.state import list_actors, list_jobs, list_placement_groups

from tests.e2e.test_hyper import search, search_id_of, wait_search
from tests.helpers import Spell, wait_for


def test_a_10000_point_grid_makes_records_and_ray_objects_only_as_it_runs(
        spell: Spell, tmp_path: Path) -> None:
    hundred = ",".join(str(i) for i in range(100))
    done = spell("hyper", "grid", "--param", f"a={hundred}", "--param", f"b={hundred}",
                 "--max-concurrent", "2", "sleep 0.5 # :a: :b:", cwd=tmp_path)
    search_id = search_id_of(done)
    wait_for(lambda: len(search(spell, search_id)["run_ids"]) >= 3, 300,
             what="three trials to start")
    submission_id = search(spell, search_id)["ray_submission_id"]
    job_id = next(job.job_id for job in list_jobs(address=spell.ray_address, limit=10_000)
                  if job.submission_id == submission_id)
    killed = spell("hyper", "kill", str(search_id))
    assert killed.returncode == 0, killed.stderr
    ended = wait_search(spell, search_id, "killed")
    # A handful of runs, not 10,000: each made when its trial started.
    assert 3 <= len(ended["run_ids"]) <= 20, ended["run_ids"]
    # Every placement group and actor the driver ever made, removed or not: a few per
    # trial that ran, none for the 10,000 points that never did.
    groups = list_placement_groups(address=spell.ray_address, limit=10_000,
                                   filters=[("creator_job_id", "=", job_id)])
    actors = list_actors(address=spell.ray_address, limit=10_000,
                         filters=[("job_id", "=", job_id)])
    assert 1 <= len(groups) <= 2 * len(ended["run_ids"]) + 4, len(groups)
    assert 1 <= len(actors) <= len(ended["run_ids"]) + 2, len(actors)

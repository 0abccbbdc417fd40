"""Workflows end to end: `spell workflow` with managers that are Python scripts using the
SDK, on the real server and the session's Ray head."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import Spell, wait_for

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]

CHAIN = '''
import json, os
from spellray.client import from_environment
from spellray.errors import Forbidden, InvalidInput, RunNotFound

client = from_environment()
print("manager", os.environ["SPELL_RUN"], os.environ["SPELL_WORKFLOW_ID"], flush=True)
first = client.runs.new("python step.py", commit_label="code", idempotent=True)
done = client.runs.wait(first.id)
second = client.runs.new(
    "cat in/made.txt > copied.txt; env | grep ^SPELL_ | sort > env.txt; ls -A > here.txt",
    mounts=[f"runs/{first.id}/out:in"])
ended = client.runs.wait(second.id)
refusals = {}
for name, call in [("other", lambda: client.runs.get(int(os.environ["OTHER_RUN"]))),
                   ("admin", lambda: client.workflows.list()),
                   ("label", lambda: client.runs.new("true", commit_label="nope"))]:
    try:
        call()
    except (Forbidden, InvalidInput, RunNotFound) as exc:
        refusals[name] = [type(exc).__name__, exc.message]
json.dump({"first": first.id, "reused": first.reused, "first_status": done.status.value,
           "second": second.id, "second_status": ended.status.value, "refusals": refusals},
          open("result.json", "w"))
'''


@pytest.fixture
def workflow_project(tmp_path: Path) -> Path:
    """The manager's folder, and beside it the git repository its steps run from."""
    code = tmp_path / "steps"
    code.mkdir()
    (code / "step.py").write_text(
        "import os\nos.makedirs('out', exist_ok=True)\n"
        "open('out/made.txt', 'w').write('committed ' + os.environ['SPELL_RUN'])\n")
    subprocess.run([*GIT, "init", "-q"], cwd=code, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=code, check=True)
    subprocess.run([*GIT, "commit", "-qm", "steps"], cwd=code, check=True)
    (code / "step.py").write_text("raise SystemExit('not the committed step')\n")  # on disk
    manager = tmp_path / "manager"
    manager.mkdir()
    (manager / "manager.py").write_text(CHAIN)
    return manager


def _workflow_id(done: subprocess.CompletedProcess[str]) -> int:
    return int(done.stderr.split("workflow ")[1].split()[0])


def _ray_jobs(spell: Spell) -> dict[str, str]:
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(spell.ray_address).list_jobs()
    return {job.submission_id: job.status.value for job in jobs if job.submission_id}


def _job_cpus(spell: Spell, submission_id: str) -> float:
    """The CPUs Ray reserved for a job's entrypoint (its supervisor actor's resources)."""
    from ray.dashboard.modules.job.common import JOB_ACTOR_NAME_TEMPLATE
    from ray.util.state import list_actors

    (actor,) = list_actors(address=spell.ray_address, detail=True, filters=[
        ("name", "=", JOB_ACTOR_NAME_TEMPLATE.format(job_id=submission_id))])
    return (actor.required_resources or {}).get("CPU", 0)


@pytest.mark.both_databases
def test_a_workflow_chains_two_runs_on_its_snapshot(spell: Spell, workflow_project: Path,
                                                    project: Path) -> None:
    other = spell.submit_background("true", cwd=project)
    steps = workflow_project.parent / "steps"
    done = spell("workflow", "create", "--repo", f"code={steps}", "-e", f"OTHER_RUN={other}",
                 "python manager.py", cwd=workflow_project)
    assert done.returncode == 0, done.stderr
    workflow_id = _workflow_id(done)
    assert f"manager {workflow_id} {workflow_id}" in done.stdout  # the manager's log
    result = json.loads((spell.storage / "runs" / str(workflow_id) / "result.json").read_text())
    first, second = result["first"], result["second"]
    assert f"run {first} started" in done.stderr and f"run {second} complete" in done.stderr
    assert (result["first_status"], result["second_status"]) == ("complete", "complete")
    # the snapshot (HEAD), not the folder as it is on disk; the mount chains the outputs
    assert (spell.storage / "runs" / str(second) / "copied.txt").read_text() == \
        f"committed {first}"
    # a child without commit_label starts in an empty folder: its mount and what it wrote
    assert (spell.storage / "runs" / str(second) / "here.txt").read_text().split() == [
        "copied.txt", "env.txt", "here.txt", "in"]
    env = dict(line.split("=", 1) for line in
               (spell.storage / "runs" / str(second) / "env.txt").read_text().splitlines())
    assert env["SPELL_RUN"] == str(second) and env["SPELL_WORKFLOW_ID"] == str(workflow_id)
    assert env["SPELL_TOKEN"]
    refusals = result["refusals"]
    assert refusals["other"][0] == "RunNotFound"  # 404: another's run is not there for it
    assert refusals["admin"][0] == "Forbidden"  # 403: an admin's action
    assert refusals["label"][0] == "InvalidInput" and "unknown commit_label" in \
        refusals["label"][1]

    workflow = spell.api("GET", f"/api/workflows/{workflow_id}").json()
    assert workflow["status"] == "complete" and workflow["manager"]["kind"] == "workflow"
    assert [(r["id"], r["parent_run_id"], r["workflow_id"]) for r in workflow["runs"]] == [
        (first, workflow_id, workflow_id), (second, workflow_id, workflow_id)]
    # the manager held no CPU of its own (a plain run holds one): what Ray's job actor asked
    assert _job_cpus(spell, workflow["manager"]["ray_submission_id"]) == 0
    assert _job_cpus(spell, spell.run_info(other)["ray_submission_id"]) == 1
    tree = spell("workflow", "describe", str(workflow_id))
    assert tree.returncode == 0 and f"run {first}" in tree.stdout and "complete" in tree.stdout
    assert str(workflow_id) in spell("workflow", "list").stdout
    assert f"{workflow_id} (manager)" in spell("ps").stdout

    # the same workflow again: the idempotent step is reused, not run again
    again = spell("workflow", "--repo", f"code={steps}", "-e", f"OTHER_RUN={other}",
                  "python manager.py", cwd=workflow_project)
    assert again.returncode == 0, again.stderr
    rerun = json.loads((spell.storage / "runs" / str(_workflow_id(again)) / "result.json")
                       .read_text())
    assert rerun["first"] == first and rerun["reused"] is True


KEEPS_GOING = ("python -c \"import time\nfor i in range(900):\n print('tick', i, flush=True)"
               "\n time.sleep(0.2)\"")


def test_a_killed_workflow_leaves_no_active_run(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "manager.py").write_text(
        "import time\nfrom spellray.client import from_environment\n"
        "client = from_environment()\n"
        f"for _ in range(2):\n    client.runs.new({KEEPS_GOING!r})\n"
        "print('started both', flush=True)\ntime.sleep(600)\n")
    done = spell("workflow", "create", "-b", "python manager.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    workflow_id = int(done.stdout.split()[1])

    def running_children() -> list[dict]:
        runs = spell.api("GET", f"/api/workflows/{workflow_id}").json()["runs"]
        return len(runs) == 2 and all(r["status"] == "running" for r in runs) and runs

    children = wait_for(running_children, timeout=180, what="two running children")
    killed = spell("workflow", "kill", str(workflow_id))
    assert killed.returncode == 0, killed.stderr
    workflow = spell.api("GET", f"/api/workflows/{workflow_id}").json()
    assert workflow["status"] == "killed"
    assert {r["status"] for r in workflow["runs"]} == {"killed"}  # at once, in one go
    ids = [workflow["manager"]["ray_submission_id"]] + \
        [c["ray_submission_id"] for c in children]
    # and Ray agrees: none of their jobs is left
    wait_for(lambda: all(_ray_jobs(spell).get(i) in ("STOPPED", "FAILED", "SUCCEEDED")
                         for i in ids), timeout=120, what="Ray to end every job")


def test_a_failed_manager_ends_the_workflow_failed_and_keeps_its_runs(
        spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "manager.py").write_text(
        "from spellray.client import from_environment\n"
        "client = from_environment()\n"
        "done = client.runs.wait(client.runs.new('echo fine').id)\n"
        f"client.runs.new({KEEPS_GOING!r})\n"
        "raise SystemExit(f'manager gives up after run {done.id}')\n")
    done = spell("workflow", "create", "python manager.py", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "manager gives up" in done.stdout
    workflow_id = _workflow_id(done)
    workflow = spell.api("GET", f"/api/workflows/{workflow_id}").json()
    assert workflow["status"] == "failed"
    assert workflow["runs"][0]["status"] == "complete"
    assert workflow["runs"][1]["status"] in ("requested", "building", "running")  # kept
    # its token ended with it: the workflow cannot grow, and stopping still reaches its runs
    stopped = spell("stop", str(workflow["runs"][1]["id"]))
    assert stopped.returncode == 0, stopped.stderr

"""Workflows written as a Spell user wrote them (``import spell.client``), run unchanged by
``spell workflow create`` on a real Ray head: chained runs, a followed and killed child,
children in parallel."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ray.job_submission import JobStatus, JobSubmissionClient

from tests.helpers import Spell

CHAIN_MANAGER = '''\
import spell.client

client = spell.client.from_environment()
workflow = client.active_workflow
print("workflow", workflow.id)

train = client.runs.new(command="python train.py", commit_label="code")
train.wait_status(client.runs.COMPLETE)
evaluate = client.runs.new(command="python evaluate.py", commit_label="code",
                           attached_resources={f"runs/{train.id}/model": "model"})
evaluate.wait_status(client.runs.COMPLETE)
print("chained", train.id, evaluate.id)
'''

TRAIN = '''\
import os
import spell.client
from spell.metrics import send_metric

print("child of workflow", spell.client.from_environment().active_workflow.id)

os.makedirs("model", exist_ok=True)
open("model/weights.txt", "w").write("trained in workflow " + os.environ["SPELL_WORKFLOW_ID"])
send_metric("stage", "trained")
'''

EVALUATE = '''\
print("evaluating", open("model/weights.txt").read())
'''

WATCH_MANAGER = '''\
import spell.client

client = spell.client.from_environment()
child = client.runs.new(command="python slow_train.py", commit_label="code")
for entry in child.logs(follow=True):
    if "epoch 3" in str(entry):
        print("saw", str(entry).strip())
        break
child.wait_metric("loss", client.runs.LESS_THAN, 0.5)
child.kill()
child.wait_status(client.runs.KILLED)
print("killed", child.id)

parallel = [client.runs.new(command=f"ls -A; echo child {i}") for i in range(3)]
for run in parallel:
    run.wait_status(client.runs.COMPLETE)
print("parallel", " ".join(str(run.id) for run in parallel))
'''

SLOW_TRAIN = '''\
import time
from spell.metrics import send_metric

for epoch in range(600):
    print("epoch", epoch, flush=True)
    send_metric("loss", 1.0 / (epoch + 1), index=epoch)
    time.sleep(0.5)
'''


def _commit_all(folder: Path) -> None:
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "workflow"], cwd=folder, check=True)


def _active_jobs(spell: Spell) -> list[str]:
    jobs = JobSubmissionClient(spell.ray_address).list_jobs()
    return [job.submission_id or "" for job in jobs
            if not JobStatus(job.status).is_terminal()]


def test_a_spell_workflow_chains_two_runs(spell: Spell, project: Path) -> None:
    (project / "manager.py").write_text(CHAIN_MANAGER)
    (project / "train.py").write_text(TRAIN)
    (project / "evaluate.py").write_text(EVALUATE)
    _commit_all(project)

    done = spell("workflow", "create", "--repo", f"code={project}", "python manager.py",
                 cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    train_id, evaluate_id = next(line.split()[1:] for line in done.stdout.splitlines()
                                 if line.startswith("chained"))
    workflow_id = next(line.split()[1] for line in done.stdout.splitlines()
                       if line.startswith("workflow"))

    evaluate = spell.run_info(int(evaluate_id))
    assert evaluate["status"] == "complete" and evaluate["workflow_id"] == int(workflow_id)
    log = spell("logs", evaluate_id).stdout
    assert f"evaluating trained in workflow {workflow_id}" in log
    assert "stage" in spell("metrics", train_id).stdout
    assert f"child of workflow {workflow_id}" in spell("logs", train_id).stdout
    described = spell("workflow", "describe", workflow_id)
    assert described.returncode == 0
    assert train_id in described.stdout and evaluate_id in described.stdout


def test_a_spell_workflow_follows_waits_kills_and_fans_out(spell: Spell, project: Path) -> None:
    (project / "manager.py").write_text(WATCH_MANAGER)
    (project / "slow_train.py").write_text(SLOW_TRAIN)
    _commit_all(project)

    done = spell("workflow", "create", "--repo", f"code={project}", "python manager.py",
                 cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("saw epoch 3") for line in lines), done.stdout
    killed = next(line.split()[1] for line in lines if line.startswith("killed"))
    assert spell.run_info(int(killed))["status"] == "killed"
    parallel = next(line.split()[1:] for line in lines if line.startswith("parallel"))
    assert len(set(parallel)) == 3
    for run_id in parallel:
        assert spell.run_info(int(run_id))["status"] == "complete"
        # Started without commit_label: an empty working folder, as on Spell.
        log = spell("logs", run_id).stdout
        assert "train.py" not in log and "child" in log
    assert not [job for job in _active_jobs(spell) if job.endswith(f"-run-{killed}")]

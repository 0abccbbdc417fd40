"""Workflows and scoped tokens against a real server with no Ray behind it: a `--local`
workflow needs no Ray job for its manager, so its token, its children's rows and the
cascade are all checked here, over HTTP. (tests/e2e/test_workflows.py runs them on Ray.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from spellray.client import Client
from spellray.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    RayUnavailable,
    RunNotFound,
    Unauthorized,
)
from tests.helpers import RaylessServer

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def _repo(folder: Path, text: str) -> str:
    folder.mkdir(parents=True)
    (folder / "step.py").write_text(text)
    subprocess.run([*GIT, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*GIT, "commit", "-qm", "one"], cwd=folder, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture
def admin(rayless_server: RaylessServer) -> Client:
    return Client(rayless_server.url, rayless_server.token)


def _child(manager: Client, **options: object) -> int:
    """A child's row is made before Ray is asked (and refuses, here): its number."""
    before = {r.id for r in manager.runs.list(0).runs}
    with pytest.raises(RayUnavailable):
        manager.runs.new("echo child", code_dir=None, **options)
    (new,) = {r.id for r in manager.runs.list(0).runs} - before
    return new


def test_a_manager_token_sees_and_starts_only_its_workflows_runs(admin: Client,
                                                                 tmp_path: Path) -> None:
    commit = _repo(tmp_path / "code", "print('v1')\n")
    workflow = admin.workflows.create("python manager.py", local=True, code_dir=None,
                                      repos=[f"code={tmp_path / 'code'}"])
    assert workflow.status.value == "running" and workflow.token
    assert workflow.manager.kind == "workflow" and workflow.manager.workflow_id == workflow.id
    assert [(r.label, r.code.git_commit) for r in workflow.repos] == [("code", commit)]
    other = admin.workflows.create("python other.py", local=True, code_dir=None)
    manager = Client(admin.url, workflow.token)

    child = _child(manager, commit_label="code")
    run = admin.runs.get(child)
    assert (run.workflow_id, run.parent_run_id) == (workflow.id, workflow.id)
    assert run.code is not None and run.code.sha256 == workflow.repos[0].code.sha256
    assert run.env.get("SPELL_WORKFLOW_ID") is None  # set in the job, not stored as -e
    plain = admin.runs.get(_child(manager))
    assert plain.code is None and plain.workflow_id == workflow.id  # an empty folder

    # it sees its own workflow and runs, and nothing else (404: as if nothing were there)
    assert {r.id for r in manager.runs.list(0).runs} == {workflow.id, child, plain.id}
    assert manager.workflows.get(workflow.id).runs[0].id == child
    with pytest.raises(RunNotFound):
        manager.runs.get(other.id)
    with pytest.raises(RunNotFound):
        manager.runs.kill(other.id)
    with pytest.raises(RunNotFound) as missing:
        manager.runs.get(other.id + 1000)
    assert "there is no run" in missing.value.message
    answer = httpx.get(f"{admin.url}/api/workflows/{other.id}", timeout=10,
                       headers={"Authorization": f"Bearer {workflow.token}"})
    assert answer.status_code == 404
    # what it sees but may not do, and admin-only actions: 403
    with pytest.raises(Forbidden):
        manager.runs.report(child, "failed")  # only the child's own runner reports
    with pytest.raises(Forbidden):
        manager.workflows.list()
    with pytest.raises(Forbidden):
        manager.links.create("mine", f"runs/{child}")
    answer = httpx.delete(f"{admin.url}/api/workflows/{other.id}", timeout=10,
                          headers={"Authorization": f"Bearer {workflow.token}"})
    assert answer.status_code == 404  # not even visible
    answer = httpx.delete(f"{admin.url}/api/workflows/{workflow.id}", timeout=10,
                          headers={"Authorization": f"Bearer {workflow.token}"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    manager.resources.ls("")  # reading resources is a run's right

    with pytest.raises(InvalidInput, match=r"unknown commit_label .nope.: workflow \d+ has code"):
        manager.runs.new("echo x", commit_label="nope")
    with pytest.raises(InvalidInput, match="use it in a workflow's manager"):
        admin.runs.new("echo x", commit_label="code", code_dir=None)

    # stop: the manager (run here) and its children end at once; its token with it
    stopped = admin.workflows.stop(workflow.id)
    assert stopped.status.value == "stopped"
    assert all(r.status.is_terminal for r in stopped.runs)
    with pytest.raises(Unauthorized):
        manager.runs.list()
    admin.workflows.rm(workflow.id)
    assert workflow.id not in {w.id for w in admin.workflows.list(0).workflows}
    assert admin.runs.get(child).workflow_id == workflow.id  # its runs stay
    admin.workflows.kill(other.id)


def test_a_stopping_workflow_starts_no_new_run(rayless_server: RaylessServer,
                                               admin: Client) -> None:
    """The cascade and a child's creation both write the manager's row: once a stop is
    asked for, a child is refused (here: the manager's token is still valid, since a
    non-local manager ends only when its runner has saved)."""
    from spellray.server import db

    workflow = admin.workflows.create("python manager.py", local=True, code_dir=None)
    manager = Client(admin.url, workflow.token or "")
    url = f"sqlite:///{rayless_server.home / 'spellray.db'}"
    with db.make_session_factory(db.make_engine(url))() as session:
        session.get(db.Run, workflow.id).stop_requested = "stop"
        session.commit()
    with pytest.raises(Conflict, match="is stopping or has ended: it starts no new runs"):
        manager.runs.new("echo late", code_dir=None)
    assert [r.id for r in admin.workflows.get(workflow.id).runs] == []
    admin.workflows.kill(workflow.id)


def _spell(server: RaylessServer, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spellray.cli.main", *args], cwd=cwd,
                          env=server.env, capture_output=True, text=True, timeout=120)


def test_bad_workflow_input_is_one_line_before_any_upload(rayless_server: RaylessServer,
                                                          admin: Client,
                                                          tmp_path: Path) -> None:
    _repo(tmp_path / "code", "print(1)\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    code_dir = rayless_server.home / "storage" / "code"
    before = sorted(code_dir.iterdir()) if code_dir.exists() else []
    runs_before = admin.runs.list(0).total
    cases = [
        (["workflow", "create", "--repo", "code", "python m.py"], "--repo 'code' is malformed"),
        (["workflow", "--repo", f"code={plain}", "python m.py"], "is not a git repository"),
        (["workflow", "create", "-r", f"code={tmp_path / 'code'}:nope", "python m.py"],
         "'nope' is not a commit"),
        (["workflow", "create", "-r", f"c={tmp_path / 'code'}", "-r", f"c={tmp_path}/code",
          "python m.py"], "given twice"),
        (["workflow", "create", "--github-repo", "lib", "python m.py"], "is malformed"),
        (["workflow", "describe", "99999"], "there is no workflow 99999"),
    ]
    for args, message in cases:
        done = _spell(rayless_server, *args, cwd=tmp_path / "code")
        assert done.returncode != 0, (args, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert (sorted(code_dir.iterdir()) if code_dir.exists() else []) == before
    assert admin.runs.list(0).total == runs_before


def test_local_manager_runs_here_with_its_workflow_set(rayless_server: RaylessServer,
                                                       admin: Client, tmp_path: Path) -> None:
    script = tmp_path / "manager.py"
    script.write_text(
        "import os\n"
        "from spellray.client import from_environment\n"
        "print('ids', os.environ['SPELL_WORKFLOW_ID'], os.environ['SPELL_RUN'])\n"
        "assert os.environ['SPELL_TOKEN'] == os.environ['SPELLRAY_TOKEN']\n"
        "client = from_environment()\n"
        "print('sees', sorted(r.id for r in client.runs.list().runs))\n")
    done = _spell(rayless_server, "workflow", "create", "--local", f"{sys.executable} {script}",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    workflow_id = int(done.stderr.split("workflow ")[1].split()[0])
    assert f"ids {workflow_id} {workflow_id}" in done.stdout
    assert f"sees [{workflow_id}]" in done.stdout
    assert admin.workflows.get(workflow_id).status.value == "complete"
    failed = _spell(rayless_server, "workflow", "--local", "exit 4", cwd=tmp_path)
    assert failed.returncode == 3, failed.stderr
    assert "exited with code 4" in failed.stderr

"""Projects and archived runs end to end: the real CLI, the real server, a real Ray head and
MLflow's own REST API. Runs go in a project (`spell run -p`), move between projects with
their MLflow runs, a project is renamed and archived; archived runs leave `spell ps`,
`spell ls runs/`, links and mounts while `spell cp` still reads them. Bad input is one line
and changes nothing in the DB (its rows compared before and after)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.cli.test_users import one_error_line
from tests.e2e.test_console import login
from tests.helpers import Spell

METRIC = "python -c \"from spellray.metrics import send_metric; send_metric('acc', {v})\""


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _run(spell: Spell, cwd: Path, *args: str) -> int:
    """A run to its end; its number."""
    done = spell("run", *args, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stderr.split("run ")[1].split()[0])


def _numbers(ps: str) -> list[int]:
    return [int(line.split()[0]) for line in ps.splitlines()[1:]
            if line.strip() and line.split()[0].isdigit()]


def _mlflow(spell: Spell, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(method, f"{spell.url}/mlflow/api/2.0/mlflow{path}",
                             headers={"Authorization": f"Bearer {spell.token}"}, timeout=60,
                             **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _experiment_runs(spell: Spell, name: str) -> set[str]:
    """The MLflow run ids in experiment ``name``, as MLflow's own API lists them."""
    experiment = _mlflow(spell, "GET", "/experiments/get-by-name",
                         params={"experiment_name": name})["experiment"]
    found = _mlflow(spell, "POST", "/runs/search",
                    json={"experiment_ids": [experiment["experiment_id"]]})
    return {run["info"]["run_id"] for run in found.get("runs", [])}


def _rows(spell: Spell) -> dict[str, list[tuple[Any, ...]]]:
    """What bad input must not change: every project and each run's project and archive."""
    url = spell.extra_env.get("SPELLRAY_DATABASE_URL") or f"sqlite:///{spell.home}/spellray.db"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                "projects": [tuple(r) for r in connection.execute(text(
                    "SELECT id, name, description, owner, mlflow_experiment_id, archived_at "
                    "FROM projects ORDER BY id"))],
                "runs": [tuple(r) for r in connection.execute(text(
                    "SELECT id, project_id, archived_at, status FROM runs ORDER BY id"))],
            }
    finally:
        engine.dispose()


def test_runs_in_projects_and_their_mlflow_runs_move_with_them(spell: Spell,
                                                                project: Path) -> None:
    _ok(spell("project", "create", "mnist", "-d", "digits"))
    in_mnist = _run(spell, project, "-p", "mnist", METRIC.format(v=0.9))
    loose = _run(spell, project, METRIC.format(v=0.5))
    mlflow_ids = {n: spell.run_info(n)["mlflow_run_id"] for n in (in_mnist, loose)}

    assert _numbers(_ok(spell("ps", "-p", "mnist"))) == [in_mnist]
    assert loose in _numbers(_ok(spell("ps", "-p", "uncategorized")))
    assert in_mnist not in _numbers(_ok(spell("ps", "-p", "uncategorized")))
    assert "Project      mnist" in _ok(spell("info", str(in_mnist)))
    assert "Project      - (uncategorized)" in _ok(spell("info", str(loose)))
    # MLflow groups them the same way: the project is an experiment of its name.
    assert mlflow_ids[in_mnist] in _experiment_runs(spell, "mnist")
    assert mlflow_ids[loose] in _experiment_runs(spell, "spellray")

    assert "moved 1 run(s) into mnist" in _ok(spell("project", "add-runs", "mnist",
                                                     str(loose)))
    assert _numbers(_ok(spell("ps", "-p", "mnist"))) == [loose, in_mnist]
    assert _experiment_runs(spell, "mnist") >= set(mlflow_ids.values())
    assert mlflow_ids[loose] not in _experiment_runs(spell, "spellray")
    history = _mlflow(spell, "GET", "/metrics/get-history",
                      params={"run_id": mlflow_ids[loose], "metric_key": "acc"})
    assert [m["value"] for m in history["metrics"]] == [0.5]  # its metrics moved with it
    assert "2 run(s): complete 2" in _ok(spell("project", "get", "mnist"))

    _ok(spell("project", "remove-runs", "mnist", str(loose)))
    assert _numbers(_ok(spell("ps", "-p", "mnist"))) == [in_mnist]
    assert mlflow_ids[loose] in _experiment_runs(spell, "spellray")

    _ok(spell("project", "edit", "mnist", "--name", "digits", "-d", "handwritten digits"))
    assert _numbers(_ok(spell("ps", "-p", "digits"))) == [in_mnist]
    assert mlflow_ids[in_mnist] in _experiment_runs(spell, "digits")
    got = _ok(spell("project", "get", "digits"))
    assert "1 run(s)" in got and "complete 1" in got and "handwritten digits" in got
    assert str(in_mnist) in got.split("CREATED")[1]
    assert "digits" in _ok(spell("project", "list"))

    # Bad input: one line, a non-zero exit, and the DB as it was.
    before = _rows(spell)
    for args, words in [
        (("project", "create", "digits"), ("exists already",)),
        (("project", "create", "bad name!"), ("bad project name",)),
        (("project", "create", "uncategorized"), ("without a project",)),
        (("project", "create", "spellray"), ("MLflow experiment of runs without",)),
        (("project", "get", "mnist"), ("there is no project 'mnist'",)),
        (("ps", "-p", "nosuch"), ("there is no project 'nosuch'",)),
        (("project", "add-runs", "nosuch", str(loose)), ("there is no project",)),
        (("project", "add-runs", "digits", str(loose), "99999"), ("there is no run 99999",)),
        (("project", "remove-runs", "digits", str(loose)), (f"run {loose} is not in",)),
        (("project", "edit", "digits"), ("nothing to change",)),
        (("project", "edit", "digits", "--name", "spellray"), ("without a project",)),
        (("run", "-p", "nosuch", "echo never"), ("there is no project 'nosuch'",)),
    ]:
        one_error_line(spell(*args, cwd=project), *words)
    assert _rows(spell) == before

    # An archived project takes no runs, and one with an active run is not archived.
    held = spell.submit_background("sleep 600", "-p", "digits", cwd=project)
    spell.wait_status(held, "running")
    before = _rows(spell)
    one_error_line(spell("project", "archive", "digits"), f"active runs ({held})")
    assert _rows(spell) == before
    _ok(spell("kill", str(held)))
    spell.wait_status(held, "killed")
    _ok(spell("project", "archive", "digits"))
    assert "digits" not in _ok(spell("project", "list"))
    assert "digits" in _ok(spell("project", "list", "--archived"))
    before = _rows(spell)
    one_error_line(spell("run", "-p", "digits", "echo never", cwd=project), "archived")
    one_error_line(spell("project", "add-runs", "digits", str(loose)), "archived")
    assert _rows(spell) == before
    _ok(spell("project", "unarchive", "digits"))
    assert "digits" in _ok(spell("project", "list"))
    assert mlflow_ids[in_mnist] in _experiment_runs(spell, "digits")  # restored with it

    # The console filters by project too, and a run's page names its project.
    browser, _ = login(spell)
    page = browser.get("/", params={"project": "digits"}).text
    assert f'href="/runs/{in_mnist}"' in page and f'href="/runs/{loose}"' not in page
    assert '<option value="digits" selected>' in page
    assert f'href="/runs/{loose}"' in browser.get("/", params={"project": "uncategorized"}).text
    assert '<td class="project"><a href="/?project=digits">' in browser.get("/").text
    assert 'href="/?project=digits">digits</a>' in browser.get(f"/runs/{in_mnist}").text


def test_archived_runs_leave_lists_links_and_mounts_but_keep_their_files(
        spell: Spell, project: Path, tmp_path: Path) -> None:
    done = _run(spell, project, "python train.py")  # writes model/weights.txt
    _ok(spell("link", f"best-{done}", f"runs/{done}/model"))
    active = spell.submit_background("sleep 600", cwd=project)
    spell.wait_status(active, "running")

    before = _rows(spell)
    one_error_line(spell("archive", str(done), str(active)), f"run {active} is running")
    one_error_line(spell("archive", "99999"), "there is no run 99999")
    assert _rows(spell) == before  # all or nothing: the ended run was not archived either

    assert _ok(spell("archive", "-q", str(done))) == ""
    assert done not in _numbers(_ok(spell("ps")))
    assert _numbers(_ok(spell("ps", "--archived"))) == [done]
    assert f"spell unarchive {done}" in _ok(spell("info", str(done)))
    listed = _ok(spell("ls", "runs"))
    assert f"{active}/" in listed.split() and f"{done}/" not in listed.split()
    before = _rows(spell)
    for args, words in [
        (("run", "-m", f"runs/{done}/model:m", "cat m/weights.txt"), (f"run {done} is archived",)),
        (("run", "-m", f"best-{done}:m", "cat m/weights.txt"), ("archived",)),
        (("ls", f"best-{done}"), (f"run {done} is archived",)),
        (("link", f"other-{done}", f"runs/{done}/model"), ("archived",)),
    ]:
        one_error_line(spell(*args, cwd=project), *words)
    assert _rows(spell) == before
    # Its files stay: spell cp reads them.
    _ok(spell("cp", f"runs/{done}/model/weights.txt", str(tmp_path)))
    assert (tmp_path / "weights.txt").read_text() == "42"

    assert "unarchived 1 run(s)" in _ok(spell("unarchive", str(done)))
    assert done in _numbers(_ok(spell("ps")))
    mounted = spell("run", "-m", f"best-{done}:m", "cat m/weights.txt", cwd=project)
    assert mounted.returncode == 0 and "42" in mounted.stdout, mounted.stderr
    _ok(spell("kill", str(active)))


MANAGER = '''
from spellray.client import from_environment

client = from_environment()
inherited = client.runs.new("echo child", code_dir=None)
elsewhere = client.runs.new("echo elsewhere", code_dir=None, project="other")
for run in (inherited, elsewhere):
    client.runs.wait(run.id)
print("children", inherited.id, elsewhere.id)
'''


def test_trials_workflow_children_and_sdk_runs_go_in_their_project(spell: Spell,
                                                                 tmp_path: Path) -> None:
    for name in ("grid", "flow", "other"):
        _ok(spell("project", "create", name))
    search = spell("hyper", "grid", "-p", "grid", "--param", "x=1,2", "--follow", "echo :x:",
                   cwd=tmp_path)
    assert search.returncode == 0, search.stdout + search.stderr
    trials = _numbers(_ok(spell("ps", "-p", "grid")))
    assert len(trials) == 2
    assert {spell.run_info(t)["kind"] for t in trials} == {"trial"}
    one_error_line(spell("hyper", "grid", "-p", "nosuch", "--param", "x=1", "echo :x:",
                         cwd=tmp_path), "there is no project 'nosuch'")

    (tmp_path / "manager.py").write_text(MANAGER)
    flow = spell("workflow", "create", "-p", "flow", "python manager.py", cwd=tmp_path)
    assert flow.returncode == 0, flow.stdout + flow.stderr
    child, elsewhere = (int(n) for n in flow.stdout.split("children ")[1].split()[:2])
    in_flow = _numbers(_ok(spell("ps", "-p", "flow")))
    assert child in in_flow and elsewhere not in in_flow and len(in_flow) == 2  # + manager
    assert _numbers(_ok(spell("ps", "-p", "other"))) == [elsewhere]
    # The SDK's runs.list and Spell's API filter the same way.
    from spellray.client import Client

    client = Client(spell.url, spell.token)
    assert [r.id for r in client.runs.list(project="other").runs] == [elsewhere]
    assert client.projects.get("flow").status_counts == {"complete": 2}

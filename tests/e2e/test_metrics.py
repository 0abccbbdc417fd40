"""Metrics end to end: send_metric and plain mlflow in a run, `spell metrics`, MLflow under
/mlflow behind the tokens, `spell ui`'s login, and --stop-condition. The real CLI, the real
server over HTTP, a real Ray head."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.helpers import Spell, wait_for

SEND = (
    "import time\n"
    "from spellray.metrics import send_metric\n"
    "for i in range(6):\n"
    "    send_metric('accuracy', i / 10)\n"
    "    send_metric('train/loss', 1 - i / 10, index=10 * i)\n"
    "    time.sleep(0.05)\n"
    "print('sent')\n"
)
PLAIN_MLFLOW = (
    "import os, mlflow\n"
    "from spellray.metrics import send_metric\n"
    "print('mlflow run', os.environ['MLFLOW_RUN_ID'])  # mlflow takes it out of os.environ\n"
    "send_metric('from_spellray', 2.5)\n"
    "mlflow.log_metric('from_mlflow', 1.5, step=3)\n"
    "mlflow.log_text('hello', 'notes/hello.txt')\n"
)
# Accuracy climbs 0.00, 0.01, ... one value per 0.1 s, writing an output file each time.
CLIMB = (
    "import time\n"
    "from spellray.metrics import send_metric\n"
    "for i in range(600):\n"
    "    open(f'out{i}.txt', 'w').write(str(i))\n"
    "    send_metric('accuracy', i / 100)\n"
    "    time.sleep(0.1)\n"
)


def _run_id(done) -> int:
    return int(done.stderr.split("run ")[1].split()[0])


def _mlflow(spell: Spell, method: str, path: str, token: str | None = None,
            **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or spell.token}"}
    return httpx.request(method, f"{spell.url}/mlflow{path}", headers=headers, timeout=60,
                         **kwargs)


def test_send_metric_series_comes_back_through_spell_metrics(spell: Spell,
                                                             project: Path) -> None:
    (project / "send.py").write_text(SEND)
    done = spell("run", "python send.py", cwd=project)
    assert done.returncode == 0, done.stderr
    run_id = _run_id(done)

    table = spell("metrics", str(run_id))
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines() if line.strip()}
    assert rows["accuracy"][1:5] == ["6", "0.5", "0", "0.5"]  # count, last, min, max
    assert rows["accuracy"][5] == "▁▂▄▅▇█"
    assert rows["train/loss"][1:5] == ["6", "0.5", "0.5", "1"]

    series = spell("metrics", str(run_id), "train/loss")
    assert series.returncode == 0, series.stderr
    assert series.stdout.splitlines()[0].startswith("train/loss  █▇▅▄▂▁  (6 values)")
    values = [line.split()[:2] for line in series.stdout.splitlines()[2:]]
    assert values == [[str(10 * i), f"{1 - i / 10:.6g}"] for i in range(6)]

    api = spell.api("GET", f"/api/runs/{run_id}/metrics/accuracy").json()
    assert [(v["index"], v["value"]) for v in api["values"]] == [(i, i / 10) for i in range(6)]
    # The metrics file lives beside the working folder: a record in .spell, not an output.
    run_dir = spell.storage / "runs" / str(run_id)
    assert sorted(p.name for p in run_dir.iterdir()) == [".spell"]
    assert (run_dir / ".spell" / "metrics.jsonl").read_text().count("\n") == 12
    assert "MLflow run" in spell("info", str(run_id)).stdout


def test_plain_mlflow_lands_on_the_same_run(spell: Spell, project: Path) -> None:
    (project / "plain.py").write_text(PLAIN_MLFLOW)
    done = spell("run", "--param", "lr=0.1", "python plain.py", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = _run_id(done)
    info = spell.run_info(run_id)
    assert f"mlflow run {info['mlflow_run_id']}" in done.stdout

    names = [m["name"] for m in spell.api("GET", f"/api/runs/{run_id}/metrics").json()]
    assert names == ["from_mlflow", "from_spellray"]
    listed = spell("metrics", str(run_id), "from_mlflow")
    assert listed.stdout.splitlines()[2].split()[:2] == ["3", "1.5"]

    # What MLflow itself says about the run, through its own REST API under /mlflow.
    got = _mlflow(spell, "GET", "/api/2.0/mlflow/runs/get",
                  params={"run_id": info["mlflow_run_id"]})
    assert got.status_code == 200, got.text
    run = got.json()["run"]
    assert run["info"]["run_name"] == f"run-{run_id}"
    assert run["info"]["status"] == "FINISHED"
    assert {"key": "lr", "value": "0.1"} in run["data"]["params"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["spellray.run_id"] == str(run_id) and tags["spellray.kind"] == "run"
    # The artifact went through the server's proxy into its artifact store.
    stored = list((spell.home / "mlflow-artifacts").rglob("hello.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "hello"


def test_mlflow_needs_a_token(spell: Spell, project: Path) -> None:
    path = "/api/2.0/mlflow/experiments/search?max_results=10"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Cookie": "spellray_ui=nope"}):
        refused = httpx.get(f"{spell.url}/mlflow{path}", headers=headers, timeout=30)
        assert refused.status_code == 401, refused.text
        assert "MLFLOW_TRACKING_TOKEN" in refused.json()["error"]["message"]
    assert httpx.get(f"{spell.url}/mlflow/", timeout=30).status_code == 401  # the UI too
    allowed = _mlflow(spell, "GET", path)
    assert allowed.status_code == 200, allowed.text
    experiment = next(e for e in allowed.json()["experiments"] if e["name"] == "spellray")
    # MLflow's UI opens its runs in the model-training view (not GenAI's "Evaluations").
    tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
    assert tags.get("mlflow.experimentKind") == "custom_model_development"
    # A run's token works while the run does, and not after (it is revoked then).
    (project / "use_token.py").write_text(
        "import os, httpx\n"
        "token = os.environ['MLFLOW_TRACKING_TOKEN']\n"
        "r = httpx.get(os.environ['MLFLOW_TRACKING_URI'] + '/api/2.0/mlflow/runs/get',\n"
        "              params={'run_id': os.environ['MLFLOW_RUN_ID']},\n"
        "              headers={'Authorization': 'Bearer ' + token})\n"
        "print('status', r.status_code)\n"
        "open('token.txt', 'w').write(token)\n")
    done = spell("run", "python use_token.py", cwd=project)
    assert done.returncode == 0 and "status 200" in done.stdout, done.stdout + done.stderr
    token = (spell.storage / "runs" / str(_run_id(done)) / "token.txt").read_text()
    assert _mlflow(spell, "GET", path, token=token).status_code == 401


def test_spell_ui_mlflow_logs_a_browser_in(spell: Spell, project: Path) -> None:
    done = spell("ui", "--mlflow", "--no-browser")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{spell.url}/mlflow/login?code=")
    login = httpx.get(url, timeout=30)
    assert login.status_code == 303 and login.headers["location"] == "/mlflow/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/mlflow" in cookie and "SameSite=Lax" in cookie
    with httpx.Client(base_url=spell.url, cookies=login.cookies, timeout=60) as browser:
        page = browser.get("/mlflow/")
        assert page.status_code == 200 and "<title>MLflow</title>" in page.text
        script = page.text.split('src="')[1].split('"')[0]
        assert browser.get(f"/mlflow/{script}").status_code == 200
        # What the UI's own page asks for, same origin.
        search = browser.post("/mlflow/ajax-api/2.0/mlflow/experiments/search",
                              json={"max_results": 10}, headers={"Origin": spell.url})
        assert search.status_code == 200, search.text
        assert browser.get("/api/runs").status_code == 401  # the cookie opens MLflow only
    again = httpx.get(url, timeout=30)
    assert again.status_code == 401 and "spell ui" in again.text  # used up
    # `spell ui RUN --mlflow` opens that run's page.
    run_id = _run_id(spell("run", "echo hi", cwd=project))
    info = spell.run_info(run_id)
    url = spell("ui", str(run_id), "--mlflow", "--no-browser").stdout.strip().splitlines()[-1]
    page = httpx.get(url, timeout=30).headers["location"]
    assert page.startswith("/mlflow/#/experiments/") and page.endswith(info["mlflow_run_id"])


def test_stop_condition_stops_the_run_and_saves_outputs(spell: Spell, project: Path) -> None:
    (project / "climb.py").write_text(CLIMB)
    done = spell("run", "--stop-condition", "accuracy>=0.05:8", "python climb.py",
                 cwd=project)
    assert done.returncode == 4, done.stdout + done.stderr
    run_id = _run_id(done)
    info = spell.run_info(run_id)
    assert info["status"] == "stopped"
    assert info["status_reason"] == "stop condition met: accuracy >= 0.05:8 at index 8"
    assert info["stop_conditions"] == ["accuracy >= 0.05:8"]
    run_dir = spell.storage / "runs" / str(run_id)
    assert (run_dir / "out8.txt").read_text() == "8"  # outputs saved
    assert not (run_dir / "out599.txt").exists()
    record = json.loads((run_dir / ".spell" / "run.json").read_text())
    assert record["stop_conditions"] == ["accuracy >= 0.05:8"]
    # Every metric sent before the stop was forwarded before the run ended.
    sent = (run_dir / ".spell" / "metrics.jsonl").read_text().count("\n")
    assert spell.api("GET", f"/api/runs/{run_id}/metrics").json()[0]["count"] == sent >= 9
    assert "accuracy >= 0.05:8" in spell("info", str(run_id)).stdout


def test_malformed_stop_conditions_are_refused_before_anything_runs(spell: Spell,
                                                                   project: Path) -> None:
    before = spell.api("GET", "/api/runs?limit=0").json()["total"]
    cases = [("accuracy >> 0.9", "is malformed"), ("accuracy >= high", "is not a number"),
             ("accuracy >= 0.9:-1", "MIN_INDEX '-1' must be a whole number"),
             ("bad$name > 1", "may only contain")]
    for condition, message in cases:
        done = spell("run", "--stop-condition", condition, "echo hi", cwd=project)
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    refused = spell.api("POST", "/api/runs", json={"command": "echo hi",
                                                   "stop_conditions": ["x =< 1"]})
    assert refused.status_code == 400 and "is malformed" in refused.json()["error"]["message"]
    assert spell.api("GET", "/api/runs?limit=0").json()["total"] == before


def test_metrics_of_unknown_runs_and_names(spell: Spell, project: Path) -> None:
    assert spell("metrics", "999").returncode == 5
    done = spell("run", "echo no metrics", cwd=project)
    run_id = _run_id(done)
    empty = spell("metrics", str(run_id))
    assert empty.returncode == 0 and "has no metrics" in empty.stderr
    missing = spell("metrics", str(run_id), "nope")
    assert missing.returncode == 5 and "has no metric 'nope'" in missing.stderr


def test_follow_prints_values_until_the_run_ends(spell: Spell, project: Path) -> None:
    (project / "send.py").write_text(SEND)
    run_id = spell.submit_background("python send.py", cwd=project)
    followed = spell("metrics", "-f", str(run_id), "accuracy")
    assert followed.returncode == 0, followed.stderr
    indexes = [line.split()[0] for line in followed.stdout.splitlines()[1:]]
    assert indexes == [str(i) for i in range(6)]
    wait_for(lambda: spell.run_info(run_id)["status"] == "complete", what="the run to end")
    table = spell("metrics", "-f", str(run_id))  # the table, redrawn until the run ends
    assert table.returncode == 0 and "▁▂▄▅▇█" in table.stdout, table.stderr

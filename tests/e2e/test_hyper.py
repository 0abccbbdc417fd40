"""Hyperparameter searches end to end: `spell hyper` and `spellray.hyper` against the real
server and Ray head, with the real example (scikit-learn on the digits data)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Spell, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "example"
    folder.mkdir()
    shutil.copy(EXAMPLES / "train.py", folder / "train.py")
    return folder


def search_id_of(done: subprocess.CompletedProcess[str]) -> int:
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[1])


def search(spell: Spell, search_id: int) -> dict:
    return spell.api("GET", f"/api/hyper/{search_id}").json()


def wait_search(spell: Spell, search_id: int, *statuses: str, timeout: float = 300) -> dict:
    def ended() -> dict | None:
        found = search(spell, search_id)
        runs = [spell.run_info(r) for r in found["run_ids"]]
        done = found["status"] in statuses and all(
            r["status"] in ("complete", "failed", "stopped", "killed", "interrupted")
            for r in runs)
        return {**found, "runs": runs} if done else None
    return wait_for(ended, timeout, interval=0.5, what=f"search {search_id} to end")


def accuracy(spell: Spell, run_id: int) -> dict:
    series = spell.api("GET", f"/api/runs/{run_id}/metrics/accuracy").json()
    return series


@pytest.mark.both_databases
def test_grid_of_four_makes_four_runs_and_knows_the_best(spell: Spell, example: Path) -> None:
    done = spell("hyper", "grid", "--param", "rate=0.0001,0.001,0.01,0.1", "--metric",
                 "accuracy", "python train.py --epochs 3 --rate :rate:", cwd=example)
    search_id = search_id_of(done)
    ended = wait_search(spell, search_id, "complete")
    runs = ended["runs"]
    assert len(runs) == 4 and all(r["status"] == "complete" for r in runs)
    assert all(r["kind"] == "trial" for r in runs)
    assert sorted(r["params"]["rate"] for r in runs) == ["0.0001", "0.001", "0.01", "0.1"]
    finals = {}
    for run in runs:
        assert f"--rate {run['params']['rate']}" in run["command"]
        points = accuracy(spell, run["id"])["values"]
        assert [p["index"] for p in points] == [1, 2, 3]
        finals[run["id"]] = points[-1]["value"]
        assert (spell.storage / "runs" / str(run["id"]) / "model" / "model.pkl").exists()
    best = max(finals, key=finals.__getitem__)
    described = spell("hyper", "describe", str(search_id))
    assert described.returncode == 0, described.stderr
    first_row = next(line for line in described.stdout.splitlines()
                     if line.strip().split(" ")[0].isdigit())
    assert first_row.split()[0] == str(best)  # best first
    listed = spell("hyper", "list")
    assert str(search_id) in listed.stdout and "grid" in listed.stdout
    metrics = spell("hyper", "download-metrics", str(search_id))
    rows = list(csv.DictReader(io.StringIO(metrics.stdout)))
    assert len(rows) == 4 and {r["metric"] for r in rows} == {"accuracy"}
    assert {int(r["run"]): float(r["last"]) for r in rows} == pytest.approx(finals)
    archived = spell("hyper", "archive", str(search_id))
    assert archived.returncode == 0, archived.stderr
    ids = [line.split()[0] for line in spell("hyper", "list").stdout.splitlines()[1:]]
    assert str(search_id) not in ids
    ids = [line.split()[0] for line in spell("hyper", "list", "--all").stdout.splitlines()[1:]]
    assert str(search_id) in ids


def test_bayesian_search_of_six(spell: Spell, example: Path) -> None:
    done = spell("hyper", "bayesian", "-n", "6", "-r", "2", "--metric", "accuracy", "-a",
                 "max", "--param", "rate=0.0001:0.5", "--param", "epochs=1:3:int",
                 "python train.py --epochs :epochs: --rate :rate:", cwd=example)
    search_id = search_id_of(done)
    ended = wait_search(spell, search_id, "complete", timeout=600)
    runs = ended["runs"]
    assert len(runs) == 6 and all(r["status"] == "complete" for r in runs)
    for run in runs:
        assert 0.0001 <= float(run["params"]["rate"]) <= 0.5
        assert run["params"]["epochs"] in ("1", "2", "3")
        points = accuracy(spell, run["id"])["values"]
        assert len(points) == int(run["params"]["epochs"])


def test_killing_a_search_kills_its_running_trials(spell: Spell, example: Path) -> None:
    slow = "python -c 'import time\nfor i in range(600): print(i, flush=True); time.sleep(0.2)' :x:"
    done = spell("hyper", "grid", "--param", "x=1,2,3,4", slow, cwd=example)
    search_id = search_id_of(done)
    running = wait_for(lambda: [r for r in search(spell, search_id)["run_ids"]
                                if spell.run_info(r)["status"] == "running"],
                       120, what="a trial to be running")
    killed = spell("hyper", "kill", str(search_id))
    assert killed.returncode == 0, killed.stderr
    ended = wait_search(spell, search_id, "killed")
    assert ended["status"] == "killed"
    for run_id in running:
        assert spell.run_info(run_id)["status"] == "killed"
    assert len(ended["run_ids"]) < 4 or all(r["status"] == "killed" for r in ended["runs"])
    again = spell("hyper", "kill", str(search_id))
    assert again.returncode == 1 and "already ended" in again.stderr


def test_stopping_a_search_saves_its_trials_outputs(spell: Spell, example: Path) -> None:
    slow = ("python -c 'import time\nfor i in range(600):\n open(\"out.txt\",\"w\")"
            ".write(str(i)); time.sleep(0.2)' :x:")
    search_id = search_id_of(spell("hyper", "grid", "--param", "x=1,2,3", slow, cwd=example))
    running = wait_for(lambda: [r for r in search(spell, search_id)["run_ids"]
                                if spell.run_info(r)["status"] == "running"],
                       120, what="a trial to be running")
    assert spell("hyper", "stop", str(search_id)).returncode == 0
    ended = wait_search(spell, search_id, "stopped")
    for run_id in running:
        info = spell.run_info(run_id)
        assert info["status"] == "stopped", info
        assert (spell.storage / "runs" / str(run_id) / "out.txt").exists()
    assert len(ended["run_ids"]) <= 3


def test_bad_searches_are_refused_before_anything_runs(spell: Spell, example: Path) -> None:
    before = spell.api("GET", "/api/hyper").json()["searches"]
    cases = [
        (["grid", "--param", "rate=1,2", "python train.py --rate :rate: --x :x:"],
         "has :x: but no --param x"),
        (["random", "-n", "0", "--param", "rate=0:1", "python t.py :rate:"],
         "at least 1"),
        (["random", "-n", "2", "--param", "rate=1:0", "python t.py :rate:"],
         "MIN must be below MAX"),
        (["random", "-n", "2", "--param", "rate=0:1:log", "python t.py :rate:"],
         "needs MIN above 0"),
        (["grid", "--param", "rate=0:1", "python t.py :rate:"], "a grid takes values"),
        (["grid", "python t.py"], "at least one --param"),
        (["bayesian", "-n", "2", "--param", "rate=0:1", "python t.py :rate:"],
         "--metric"),
    ]
    for args, words in cases:
        done = spell("hyper", *args, cwd=example)
        assert done.returncode in (1, 2), (args, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert spell.api("GET", "/api/hyper").json()["searches"] == before
    warned = spell("hyper", "grid", "--param", "rate=0.01", "--param", "unused=1",
                   "python train.py --epochs 1 --rate :rate:", cwd=example)
    assert "unused never appears in the command" in warned.stderr
    wait_search(spell, search_id_of(warned), "complete")
    missing = spell("hyper", "describe", "9999")
    assert missing.returncode == 5


def test_python_api_from_a_script(spell: Spell, example: Path) -> None:
    script = example / "search.py"
    script.write_text(
        "import json, spellray.hyper as hyper\n"
        "s = hyper.grid('python train.py --epochs 2 --rate :rate:',\n"
        "               params={'rate': [0.001, 0.1]})\n"
        "s.wait()\n"
        "best = s.best_run('accuracy', mode='max')\n"
        "print(json.dumps({'id': s.id, 'runs': [r.id for r in s.runs], 'best': best.id,\n"
        "                  'status': s.status}))\n")
    done = subprocess.run([sys.executable, str(script)], cwd=example, env=spell.env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "complete" and len(result["runs"]) == 2
    finals = {r: accuracy(spell, r)["values"][-1]["value"] for r in result["runs"]}
    assert result["best"] == max(finals, key=finals.__getitem__)


def test_early_stop_ends_a_poor_trial_and_max_concurrent_holds(spell: Spell,
                                                               example: Path) -> None:
    (example / "score.py").write_text(
        "import sys, time\nfrom spellray.metrics import send_metric\n"
        "for i in range(20):\n    send_metric('score', float(sys.argv[1]), i)\n"
        "    time.sleep(0.2)\n")
    done = spell("hyper", "grid", "--param", "v=10,1", "--metric", "score", "--early-stop",
                 "--max-concurrent", "1", "python score.py :v:", cwd=example)
    ended = wait_search(spell, search_id_of(done), "complete")
    by_value = {r["params"]["v"]: r for r in ended["runs"]}
    good, poor = by_value["10"], by_value["1"]
    assert good["status"] == "complete"
    assert len(accuracy_like(spell, good["id"], "score")) == 20
    assert poor["status"] == "stopped" and "stopped by the search" in poor["status_reason"]
    assert len(accuracy_like(spell, poor["id"], "score")) < 20
    # One at a time: the second trial started after the first ended.
    first, second = sorted(ended["runs"], key=lambda r: r["id"])
    assert second["started_at"] >= first["ended_at"]


def accuracy_like(spell: Spell, run_id: int, name: str) -> list[dict]:
    return spell.api("GET", f"/api/runs/{run_id}/metrics/{name}").json()["values"]


def test_grid_follow_exits_as_its_worst_trial(spell: Spell, tmp_path: Path) -> None:
    done = spell("hyper", "grid", "--follow", "--param", "code=0,3", "exit :code:",
                 cwd=tmp_path)
    # A trial failed: the search exits as `spell run` does for a failed run.
    assert done.returncode == 3, (done.stdout, done.stderr)
    search_id = int(done.stderr.split("search ")[1].split()[0])
    shown = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert f"search {search_id} complete: 1 of 2 trials complete" in done.stderr, shown
    ended = search(spell, search_id)
    runs = {spell.run_info(r)["params"]["code"]: spell.run_info(r) for r in ended["run_ids"]}
    assert runs["0"]["status"] == "complete" and runs["3"]["status"] == "failed", runs
    table = done.stdout.split("RUN", 1)[1]  # the live table's last state
    assert all(str(r["id"]) in table for r in runs.values()), shown
    assert "failed" in table and "complete" in table, shown
    again = spell("hyper", "describe", str(search_id), "--follow")  # ended: returns at once
    assert again.returncode == 3 and "1 of 2 trials complete" in again.stderr, again.stderr

"""`spell run` and friends end to end: the real CLI, the real server, a real Ray head."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_spell
from tests.helpers import Spell, wait_for

SLOW = ("python -c \"import time\nfor i in range(600):\n print('tick', i, flush=True)\n"
        " open(f'out{i}.txt', 'w').write(str(i))\n time.sleep(0.2)\"")




@pytest.mark.both_databases
def test_run_streams_log_and_saves_outputs(spell: Spell, project: Path) -> None:
    done = spell("run", "python train.py", cwd=project)
    assert done.returncode == 0, done.stderr
    run_id = int(done.stderr.split("run ")[1].split()[0])
    assert f"training in run {run_id}" in done.stdout
    assert "a warning" in done.stdout  # stderr is part of the run's log
    run_dir = spell.storage / "runs" / str(run_id)
    assert (run_dir / "model" / "weights.txt").read_text() == "42"
    assert not (run_dir / "train.py").exists()  # unchanged code is not an output
    info = spell.run_info(run_id)
    assert info["status"] == "complete" and info["exit_code"] == 0
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True,
                          text=True).stdout.strip()
    assert info["code"]["git_commit"] == head and info["code"]["git_dirty"] is False
    assert [e["status"] for e in info["history"]] == [
        "requested", "building", "running", "saving", "complete"]
    logs = spell("logs", str(run_id))
    assert logs.returncode == 0 and f"training in run {run_id}" in logs.stdout
    assert "model/weights.txt" in spell("info", str(run_id)).stdout


@pytest.mark.both_databases
def test_failing_command_ends_failed_with_its_exit_code(spell: Spell, project: Path) -> None:
    done = spell("run", "echo going down; exit 7", cwd=project)
    assert done.returncode == 3, done.stderr
    assert "going down" in done.stdout and "exit code 7" in done.stderr
    run_id = int(done.stderr.split("run ")[1].split()[0])
    info = spell.run_info(run_id)
    assert info["status"] == "failed" and info["exit_code"] == 7
    logs = spell("logs", str(run_id))
    assert logs.returncode == 3 and "going down" in logs.stdout


@pytest.mark.both_databases
def test_kill_ends_now_without_outputs(spell: Spell, project: Path) -> None:
    run_id = spell.submit_background(SLOW, cwd=project)
    wait_for(lambda: "tick 3" in spell("logs", str(run_id)).stdout, what="ticks")
    killed = spell("kill", str(run_id))
    assert killed.returncode == 0, killed.stderr
    assert spell.run_info(run_id)["status"] == "killed"  # at once, not after the runner ends
    result = wait_for(lambda: spell.result(run_id), what="the runner to finish")
    assert result["status"] == "killed"
    run_dir = spell.storage / "runs" / str(run_id)
    assert sorted(p.name for p in run_dir.iterdir()) == [".spell"]
    assert "tick 3" in spell("logs", str(run_id)).stdout  # the log is kept
    assert spell("logs", str(run_id)).returncode == 4
    again = spell("kill", str(run_id))
    assert again.returncode == 1 and "already ended" in again.stderr


@pytest.mark.both_databases
def test_stop_ends_and_saves_outputs(spell: Spell, project: Path) -> None:
    run_id = spell.submit_background(SLOW, cwd=project)
    wait_for(lambda: "tick 3" in spell("logs", str(run_id)).stdout, what="ticks")
    assert spell("stop", str(run_id)).returncode == 0
    followed = spell("logs", "-f", str(run_id))
    assert followed.returncode == 4 and "stopped" in followed.stderr
    info = spell.run_info(run_id)
    assert info["status"] == "stopped"
    assert (spell.storage / "runs" / str(run_id) / "out0.txt").read_text() == "0"


def test_same_code_is_stored_once_and_gitignore_is_respected(spell: Spell,
                                                               project: Path) -> None:
    (project / "data").mkdir()
    (project / "data" / "big.bin").write_bytes(b"x" * 1000)
    first = spell("run", "test ! -e data/big.bin && echo no-data", cwd=project)
    second = spell("run", "echo again", cwd=project)
    assert first.returncode == 0 and "no-data" in first.stdout
    assert second.returncode == 0
    ids = [int(d.stderr.split("run ")[1].split()[0]) for d in (first, second)]
    shas = {spell.run_info(i)["code"]["sha256"] for i in ids}
    assert len(shas) == 1
    assert (spell.storage / "code" / f"{shas.pop()}.zip").exists()


def test_code_outside_git_is_every_file(spell: Spell, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("hello")
    done = spell("run", "cat sub/x.txt", cwd=folder)
    assert done.returncode == 0 and "hello" in done.stdout
    run_id = int(done.stderr.split("run ")[1].split()[0])
    assert spell.run_info(run_id)["code"]["git_commit"] is None


@pytest.mark.both_databases
def test_params_env_labels_and_description(spell: Spell, project: Path) -> None:
    done = spell("run", "--param", "rate=0.1", "-e", "FOO=bar", "--label", "exp1", "-d",
                 "first try", "echo rate=:rate: foo=$FOO", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "rate=0.1 foo=bar" in done.stdout
    run_id = int(done.stderr.split("run ")[1].split()[0])
    info = spell.run_info(run_id)
    assert info["params"] == {"rate": "0.1"} and info["env"] == {"FOO": "bar"}
    assert info["labels"] == ["exp1"] and info["description"] == "first try"
    assert info["command"] == "echo rate=0.1 foo=$FOO"
    listed = spell("ps", "-l", "exp1")
    assert f" {run_id} " in f" {listed.stdout}" and listed.stdout.count("complete") == 1
    assert spell("label", str(run_id), "best").returncode == 0
    assert spell.run_info(run_id)["labels"] == ["best", "exp1"]
    assert spell("label", str(run_id), "exp1", "--remove").returncode == 0
    assert spell.run_info(run_id)["labels"] == ["best"]


def test_command_after_the_first_word_belongs_to_the_command(spell: Spell,
                                                               project: Path) -> None:
    done = spell("run", "python", "-c", "import sys; print(sys.argv[1:])", "--lr", "3",
                 cwd=project)
    assert done.returncode == 0, done.stderr
    assert "['--lr', '3']" in done.stdout


@pytest.mark.both_databases
def test_ps_lists_newest_first(spell: Spell) -> None:
    listed = spell("ps", "-n", "2")
    assert listed.returncode == 0
    ids = [int(line.split()[0]) for line in listed.stdout.splitlines()
           if line.split() and line.split()[0].isdigit()]
    assert len(ids) == 2 and ids[0] > ids[1]


def test_bad_input_is_one_clear_line(spell: Spell, project: Path) -> None:
    cases = [
        (("info", "999"), 5, "there is no run 999"),
        (("logs", "999"), 5, "there is no run 999"),
        (("kill", "999"), 5, "there is no run 999"),
        (("run", "-t", "V100", "echo hi"), 1, "unknown machine type 'V100'; this cluster has: CPU"),
        (("run", ""), 1, "the command is empty"),
        (("run", "--param", "novalue", "echo :novalue:"), 1, "--param 'novalue' is malformed"),
        (("run", "-e", "=x", "echo"), 1, "-e '=x' is malformed"),
        (("run", "--no-such-flag", "echo"), 2, "No such option"),
        (("label", "1", "has space"), 1, "not a valid label"),
    ]
    before = spell.api("GET", "/api/runs?limit=0").json()["total"]
    for args, code, message in cases:
        done = spell(*args, cwd=project)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert spell.api("GET", "/api/runs?limit=0").json()["total"] == before  # nothing created


def test_every_endpoint_needs_the_token(spell: Spell) -> None:
    for method, path in [("GET", "/api/runs"), ("GET", "/api/info"), ("POST", "/api/runs"),
                         ("GET", "/api/runs/1/logs"), ("POST", "/api/runs/1/kill")]:
        missing = httpx.request(method, f"{spell.url}{path}", timeout=10)
        wrong = httpx.request(method, f"{spell.url}{path}", timeout=10,
                              headers={"Authorization": "Bearer nope"})
        assert missing.status_code == 401 and "no token" in missing.json()["error"]["message"]
        assert wrong.status_code == 401 and "wrong token" in wrong.json()["error"]["message"]
    assert (spell.home / "token").stat().st_mode & 0o777 == 0o600


def test_ten_concurrent_submissions_get_ten_numbers(tmp_path: Path, ray_head: str,
                                                    project: Path) -> None:
    # A fresh home: the ten CLIs also race to start the server, and must start only one.
    fresh = make_spell(tmp_path, ray_head)
    try:
        with ThreadPoolExecutor(10) as pool:
            done = list(pool.map(lambda i: fresh("run", "-b", f"echo {i}", cwd=project),
                                 range(10)))
        assert all(d.returncode == 0 for d in done), [d.stderr for d in done]
        ids = sorted(int(d.stdout.split()[1]) for d in done)
        assert ids == list(range(1, 11))
        for run_id in ids:
            fresh.wait_status(run_id, "complete")
        server_log = (fresh.home / "logs" / "server.log").read_text()
        assert server_log.count("spellray server") == 1  # one server started, not ten
    finally:
        fresh("server", "stop")


def test_help_does_not_import_ray() -> None:
    probe = ("import sys\nsys.argv = ['spell', '--help']\nfrom spellray.cli.main import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('IMPORTED', 'ray' in sys.modules, 'pyarrow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "IMPORTED False False" in done.stdout, done.stdout + done.stderr

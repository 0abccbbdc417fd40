"""The real `spell` CLI as a subprocess against a real spellray server that has no Ray cluster
behind it: parsing, output, exit codes and one-line errors, in seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SPELL, RaylessServer

# The exit codes of docs/configuration.md.
OK, ERROR, USAGE, NOT_FOUND = 0, 1, 2, 5


@pytest.fixture(scope="module")
def spell(rayless_server: RaylessServer):
    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SPELL, *args], env=rayless_server.env, cwd=cwd,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    return run


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_help_lists_spells_commands(spell) -> None:
    done = spell("--help")
    assert done.returncode == OK
    for command in ("run", "ps", "logs", "ls", "cp", "upload", "link", "hyper", "model",
                    "server", "cluster", "metrics", "login", "logout", "whoami", "users",
                    "access-tokens"):
        assert f" {command} " in done.stdout, command


def test_wrong_flags_are_usage_errors(spell) -> None:
    assert spell("run", "--no-such-flag", "echo").returncode == USAGE
    assert spell("info").returncode == USAGE  # no run number
    assert spell("info", "seven").returncode == USAGE


def test_malformed_values_are_one_line_before_any_request(spell, tmp_path: Path) -> None:
    def run_ids() -> list[str]:  # not the whole table: its "N s ago" moves on
        return [line.split()[0] for line in spell("ps", "-n", "0").stdout.splitlines()[1:]]

    before = run_ids()
    for args, message in ((("run", "--param", "novalue", "echo :novalue:"), "malformed"),
                          (("run", "-e", "=x", "echo"), "malformed"),
                          (("run", ""), "the command is empty"),
                          (("run", "--distributed", "0", "echo"), "distributed"),
                          (("run", "--max-resumes", "-1", "echo"), "--max-resumes -1")):
        done = spell(*args, cwd=tmp_path)
        assert done.returncode == ERROR, (args, done.stderr)
        assert message in one_error_line(done)
    assert run_ids() == before  # nothing was created


def test_unknown_runs_are_not_found(spell) -> None:
    for command in ("info", "logs", "kill", "stop"):
        done = spell(command, "9999")
        assert done.returncode == NOT_FOUND, (command, done.stderr)
        assert "there is no run 9999" in one_error_line(done)


def test_a_run_without_ray_says_so_in_one_line(spell, tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("print('hi')\n")
    done = spell("run", "python t.py", cwd=tmp_path)
    assert done.returncode == ERROR
    assert "Ray" in one_error_line(done)
    listed = spell("ps")
    assert listed.returncode == OK and "python t.py" in listed.stdout and "failed" in listed.stdout


def test_upload_ls_cp_rm(spell, tmp_path: Path) -> None:
    data = tmp_path / "cli-data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("1\n")
    (data / "sub" / "b.csv").write_text("2\n")
    assert spell("upload", str(data)).returncode == OK
    listed = spell("ls", "uploads/cli-data")
    assert listed.returncode == OK and "a.csv" in listed.stdout and "sub" in listed.stdout
    out = tmp_path / "out"
    out.mkdir()
    assert spell("cp", "uploads/cli-data", str(out)).returncode == OK
    assert (out / "cli-data" / "sub" / "b.csv").read_text() == "2\n"
    again = spell("cp", "uploads/cli-data", str(out))
    assert again.returncode == ERROR and "use -f" in one_error_line(again)
    assert spell("rm", "uploads/cli-data").returncode == OK
    assert spell("ls", "uploads/cli-data").returncode == NOT_FOUND


def test_paths_outside_storage_are_one_line(spell, tmp_path: Path) -> None:
    for path in ("runs/../../etc", "/etc", "uploads/%2e%2e/x"):
        done = spell("ls", path)
        assert done.returncode == ERROR and "storage" in one_error_line(done), path
        assert not any(tmp_path.iterdir())


def test_links_models_and_model_servers(spell, tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("42")
    assert spell("upload", str(tmp_path), "--name", "cli-model").returncode == OK
    made = spell("link", "cli-best", "uploads/cli-model")
    assert made.returncode == OK and "cli-best -> uploads/cli-model" in made.stdout
    assert "cli-best -> uploads/cli-model" in spell("link").stdout
    model = spell("model", "create", "climodel", "cli-best")
    assert model.returncode == OK and "model climodel:v1" in model.stdout, model.stderr
    assert "climodel" in spell("model", "list").stdout
    servers = spell("server", "list")
    assert servers.returncode == OK, servers.stderr
    missing = spell("server", "describe", "nobody")
    assert missing.returncode == NOT_FOUND and "nobody" in one_error_line(missing)
    assert spell("unlink", "cli-best").returncode == OK
    assert spell("link", "cli-best").returncode == NOT_FOUND


def test_help_does_not_import_ray() -> None:
    probe = ("import sys\nsys.argv = ['spell', '--help']\nfrom spellray.cli.main import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "assert 'ray' not in sys.modules, 'ray was imported'\nprint('no ray')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "no ray" in done.stdout, done.stderr

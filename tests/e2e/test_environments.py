"""Environments and code sources end to end: real pip installs into Ray runtime_envs (spellray's
uv-built virtualenvs, cluster/venv_plugin.py),
a real apt-get install, real git repositories over file://, --idempotent under concurrency,
--timeout, and --from-file / --save-command."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.helpers import Spell

# A small pure-Python package at a version nothing else here has, so the test's
# environment is built here and nowhere else.
SIX = "six==1.15.0"
SHOW_SIX = "python -c 'import six; print(\"six\", six.__version__, six.__file__)'"


def run_id_of(done: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"^run (\d+) ", done.stderr, re.MULTILINE)
    assert match, done.stderr
    return int(match[1])


def run_count(spell: Spell) -> int:
    return spell.api("GET", "/api/runs", params={"limit": 1}).json()["total"]


# Leaves a mark inside the run's virtualenv, saying whether it was there already: an
# environment built anew (whatever Ray's set-up log calls it) has no mark.
MARK_ENV = ("python -c 'import sys, pathlib; p = pathlib.Path(sys.prefix, \"spellray-test-mark\")"
            "; print(\"marked before:\", p.exists()); p.touch()'")


def test_pip_environment_is_built_once_and_reused(spell: Spell, project: Path) -> None:
    first = spell("run", "--pip", SIX, f"{SHOW_SIX} && {MARK_ENV}", cwd=project)
    assert first.returncode == 0, first.stderr
    second = spell("run", "--pip", SIX, f"{SHOW_SIX} && {MARK_ENV}", cwd=project)
    assert second.returncode == 0, second.stderr
    assert "marked before: False" in first.stdout, first.stdout
    assert "marked before: True" in second.stdout, second.stdout
    a, b = spell.run_info(run_id_of(first)), spell.run_info(run_id_of(second))
    assert a["environment"]["pip"] == [SIX]
    assert a["environment_digest"] and a["environment_digest"] == b["environment_digest"]
    # six 1.15.0 from the run's own virtualenv, which the second run shares with the first.
    line_a = next(line for line in first.stdout.splitlines() if line.startswith("six "))
    line_b = next(line for line in second.stdout.splitlines() if line.startswith("six "))
    assert line_a.startswith("six 1.15.0 ") and "runtime_resources/spellray_venv/" in line_a
    assert line_a == line_b
    assert a["environment_digest"][:12] in spell("info", str(run_id_of(second))).stdout


def test_same_environment_in_any_order_has_one_digest(spell: Spell, project: Path) -> None:
    runs = [spell.submit_background("true", *flags, cwd=project) for flags in (
        ("--pip", SIX, "--pip", "attrs"), ("--pip", "attrs", "--pip", SIX, "--pip", SIX))]
    digests = {spell.run_info(r)["environment_digest"] for r in runs}
    assert len(digests) == 1 and None not in digests
    plain = spell.submit_background("true", cwd=project)
    assert spell.run_info(plain)["environment_digest"] is None
    for run_id in [*runs, plain]:
        spell.wait_status(run_id, "complete")


def test_pip_requirements_file(spell: Spell, project: Path) -> None:
    (project / "requirements.txt").write_text(f"# pinned\n{SIX}  # for the test\n\n")
    done = spell("run", "--pip-req", "requirements.txt", SHOW_SIX, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "six 1.15.0 " in done.stdout
    # The run records the canonical environment: the file's requirements join --pip.
    assert spell.run_info(run_id_of(done))["environment"]["pip"] == [SIX]
    missing = spell("run", "--pip-req", "nope.txt", "true", cwd=project)
    assert missing.returncode == 1 and "--pip-req nope.txt: no such file" in missing.stderr


def test_missing_pip_package_fails_the_build_with_pips_words(spell: Spell,
                                                             project: Path) -> None:
    done = spell("run", "--pip", "spellray-no-such-package-xyz==1.0", "true", cwd=project)
    assert done.returncode == 3, done.stderr
    run_id = run_id_of(done)
    info = spell.run_info(run_id)
    assert info["status"] == "failed"
    assert info["status_reason"].startswith("build failed: ")
    assert "spellray-no-such-package-xyz" in info["status_reason"]
    logs = spell("logs", str(run_id))
    assert "the environment could not be built" in logs.stdout
    assert "not found in the package" in logs.stdout  # uv's own words, as it wraps them
    assert "spellray-no-such-package-xyz" in logs.stdout
    shown = spell("info", str(run_id)).stdout
    assert "Environment build log" in shown and "No solution found" in shown


def test_pip_options_and_unknown_frameworks_are_refused(spell: Spell, project: Path) -> None:
    before = run_count(spell)
    for flags, words in ((("--pip", "-e ."), "not a pip requirement"),
                         (("--pip", "--index-url=http://x"), "not a pip requirement"),
                         (("--framework", "cobol"), "--framework 'cobol' is not one")):
        done = spell("run", *flags, "true", cwd=project)
        assert done.returncode in (1, 2), done.stderr
        assert words in done.stderr, done.stderr
    assert run_count(spell) == before  # nothing was submitted


@pytest.mark.skipif(shutil.which("conda") is not None, reason="this machine has conda")
def test_conda_file_on_a_cluster_without_conda_is_refused(spell: Spell, project: Path) -> None:
    (project / "env.yml").write_text("name: x\ndependencies:\n  - python=3.11\n")
    before = run_count(spell)
    done = spell("run", "--conda-file", "env.yml", "true", cwd=project)
    assert done.returncode == 1
    assert "--conda-file needs conda on the cluster's nodes" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_count(spell) == before
    (project / "bad.yml").write_text("just: [text\n")
    bad = spell("run", "--conda-file", "bad.yml", "true", cwd=project)
    assert bad.returncode == 1 and "is not valid YAML" in bad.stderr


@pytest.mark.skipif(shutil.which("podman") is not None, reason="this machine has podman")
def test_docker_image_without_a_container_runtime_is_refused(spell: Spell,
                                                             project: Path) -> None:
    for flag in ("--docker-image", "--from"):
        done = spell("run", flag, "python:3.11-slim", "true", cwd=project)
        assert done.returncode == 1
        assert "needs a container runtime (podman)" in done.stderr, done.stderr


def _purge(package: str) -> None:
    subprocess.run(["dpkg", "--purge", package], capture_output=True, check=False)


def test_apt_installs_once_and_then_finds_it_installed(spell: Spell, project: Path) -> None:
    _purge("sl")
    try:
        first = spell("run", "--apt", "sl", "test -x /usr/games/sl && echo has-sl",
                      cwd=project)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "has-sl" in first.stdout and "apt: installed sl" in first.stdout
        second = spell("run", "--apt", "sl", "echo again", cwd=project)
        assert second.returncode == 0, second.stderr
        assert "apt: sl already installed" in second.stdout
        assert spell.run_info(run_id_of(second))["environment"]["apt"] == ["sl"]
        bad = spell("run", "--apt", "spellray-no-such-pkg", "true", cwd=project)
        assert bad.returncode == 3
        reason = spell.run_info(run_id_of(bad))["status_reason"]
        assert reason.startswith("build failed: apt:") and "spellray-no-such-pkg" in reason
    finally:
        _purge("sl")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit_version(project: Path, text: str) -> str:
    """Commit version.txt holding ``text``; return the commit."""
    (project / "version.txt").write_text(f"{text}\n")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", text)
    return _git(project, "rev-parse", "HEAD")


def test_github_url_runs_the_commit_it_names(spell: Spell, project: Path,
                                             tmp_path: Path) -> None:
    old = _commit_version(project, "one")
    new = _commit_version(project, "two")
    _git(project, "tag", "-a", "v2", "-m", "v2")
    bare = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))
    url = f"file://{bare}"
    elsewhere = tmp_path / "empty"  # the local folder must not matter
    elsewhere.mkdir()

    for ref, commit, text in ((None, new, "two"), ("v2", new, "two"), (old, old, "one")):
        flags = ["--github-url", url] + (["--github-ref", ref] if ref else [])
        done = spell("run", *flags, "cat version.txt; ls -a", cwd=elsewhere)
        assert done.returncode == 0, done.stderr
        assert text in done.stdout.splitlines()
        assert ".git" not in done.stdout.split()  # the checkout only, no repository
        info = spell.run_info(run_id_of(done))
        assert info["git"]["commit"] == commit and info["git"]["url"] == url
        assert info["code"] is None
        assert not (spell.storage / "runs" / str(info["id"]) / "version.txt").exists()

    unknown = spell("run", "--github-url", url, "--github-ref", "nope", "true", cwd=elsewhere)
    assert unknown.returncode == 1 and "'nope'" in unknown.stderr
    gone = spell("run", "--github-url", f"file://{tmp_path}/missing.git", "true",
                 cwd=elsewhere)
    assert gone.returncode == 1 and "error:" in gone.stderr and "Traceback" not in gone.stderr


def test_commit_ref_runs_the_local_repository_at_that_commit(spell: Spell,
                                                             project: Path) -> None:
    old = _commit_version(project, "one")
    (project / "version.txt").write_text("two, uncommitted\n")
    done = spell("run", "-c", old, "cat version.txt", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "one" in done.stdout.splitlines() and "uncommitted" not in done.stdout
    code = spell.run_info(run_id_of(done))["code"]
    assert code["git_commit"] == old and code["git_dirty"] is False
    bad = spell("run", "-c", "no-such-ref", "true", cwd=project)
    assert bad.returncode == 1 and "no such commit" in bad.stderr


@pytest.mark.both_databases
def test_idempotent_concurrent_submissions_make_one_run(spell: Spell, project: Path) -> None:
    command = "echo idempotent-test; sleep 1"
    with ThreadPoolExecutor(max_workers=10) as pool:
        done = list(pool.map(lambda _: spell("run", "--idempotent", "-b", command,
                                             cwd=project), range(10)))
    assert all(d.returncode == 0 for d in done), [d.stderr for d in done]
    ids = {int(d.stdout.split()[1]) for d in done}
    assert len(ids) == 1, ids
    (run_id,) = ids
    spell.wait_status(run_id, "complete")
    again = spell("run", "--idempotent", "-b", command, cwd=project)
    assert int(again.stdout.split()[1]) == run_id and "is complete" in again.stdout
    # Not identical (another param), or not --idempotent: a new run.
    other = spell("run", "--idempotent", "-b", "--param", "x=1", command, cwd=project)
    fresh = spell("run", "-b", command, cwd=project)
    new_ids = {int(other.stdout.split()[1]), int(fresh.stdout.split()[1])}
    assert run_id not in new_ids and len(new_ids) == 2
    listed = [line for line in spell("ps", "-n", "0", "--no-trunc").stdout.splitlines()
              if "idempotent-test" in line]
    assert len(listed) == 3


@pytest.mark.both_databases
def test_idempotent_does_not_reuse_a_failed_run(spell: Spell, project: Path) -> None:
    first = spell("run", "--idempotent", "echo flaky-test; exit 1", cwd=project)
    assert first.returncode == 3
    second = spell("run", "--idempotent", "echo flaky-test; exit 1", cwd=project)
    assert second.returncode == 3 and run_id_of(second) != run_id_of(first)


def test_timeout_stops_the_run_and_saves_outputs(spell: Spell, project: Path) -> None:
    loop = "for i in $(seq 600); do echo $i > progress.txt; sleep 0.2; done"
    done = spell("run", "--timeout", "0.05", loop, cwd=project)
    assert done.returncode == 4, done.stderr  # stopped
    info = spell.run_info(run_id_of(done))
    assert info["status"] == "stopped" and info["timeout_minutes"] == 0.05
    assert "timed out after 0.05 minute" in info["status_reason"]
    saved = spell.storage / "runs" / str(info["id"]) / "progress.txt"
    assert int(saved.read_text()) > 1  # it ran, then was stopped and saved
    bad = spell("run", "--timeout", "0", "true", cwd=project)
    assert bad.returncode in (1, 2) and "Traceback" not in bad.stderr


def test_save_command_and_from_file_round_trip(spell: Spell, project: Path) -> None:
    (project / "requirements.txt").write_text(f"{SIX}\n")
    saved = project / "run.yaml"
    flags = ["--pip", "attrs", "--pip-req", "requirements.txt", "-e", "A=1", "--param",
             "n=3", "--label", "round-trip", "-d", "from a file", "-t", "CPU",
             "--timeout", "5", "--idempotent"]
    first = spell("run", "--save-command", str(saved), *flags, "echo n=:n: A=$A", cwd=project)
    assert first.returncode == 0, first.stderr
    options = yaml.safe_load(saved.read_text())
    assert options["command"] == "echo n=:n: A=$A" and options["pip"] == ["attrs"]
    assert Path(options["pip-req"]).is_absolute() and options["timeout"] == 5.0
    again = spell("run", "--from-file", str(saved), cwd=project)
    assert again.returncode == 0, again.stderr
    a, b = spell.run_info(run_id_of(first)), spell.run_info(run_id_of(again))
    assert a["id"] == b["id"]  # --idempotent came back from the file: the same run
    keys = ("command", "env", "params", "labels", "description", "environment",
            "environment_digest", "timeout_minutes", "machine_type")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["command"] == "echo n=3 A=$A" and a["environment"]["pip"] == ["attrs", SIX]
    # The command line wins over the file.
    other = spell("run", "--from-file", str(saved), "--param", "n=4", cwd=project)
    assert other.returncode == 0, other.stderr
    assert spell.run_info(run_id_of(other))["params"] == {"n": "4"}
    (project / "bad.yaml").write_text("pip: [x]\nno-such-option: 1\n")
    bad = spell("run", "--from-file", "bad.yaml", cwd=project)
    assert bad.returncode == 1 and "unknown option 'no-such-option'" in bad.stderr

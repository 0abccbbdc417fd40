"""The real CLI and server with their state on a real PostgreSQL server
(SPELLRAY_DATABASE_URL): a run from submission to its end, its number, --idempotent under
concurrency, `spell info` and `spell ps`, and the record outliving a server restart. The
same features on SQLite are tested throughout tests/e2e; here, what Postgres changes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest

from tests.conftest import make_spell
from tests.helpers import Spell
from tests.postgres import Postgres

CLIENTS = 5


@pytest.fixture(scope="module")
def pg_spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str,
             postgres: Postgres) -> Iterator[Spell]:
    """A spellray server whose state DB is a new database on the session's PostgreSQL."""
    url = postgres.database()
    installation = make_spell(tmp_path_factory.mktemp("pg-spell"), ray_head)
    installation.extra_env["SPELLRAY_DATABASE_URL"] = url
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    yield installation
    installation("server", "stop")
    postgres.drop(url)


def test_a_run_on_postgres_from_submission_to_its_end(pg_spell: Spell, project: Path) -> None:
    done = pg_spell("run", "python train.py", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "training in run 1" in done.stdout  # the first run of a new DB is number 1
    info = pg_spell.run_info(1)
    assert info["status"] == "complete" and info["exit_code"] == 0
    assert [e["status"] for e in info["history"]] == [
        "requested", "building", "running", "saving", "complete"]
    assert (pg_spell.storage / "runs" / "1" / "model" / "weights.txt").read_text() == "42"
    shown = pg_spell("info", "1")
    assert shown.returncode == 0 and "model/weights.txt" in shown.stdout
    assert not (pg_spell.home / "spellray.db").exists()  # no SQLite state beside it


def test_concurrent_and_idempotent_submissions_keep_numbers_dense(pg_spell: Spell) -> None:
    """Five clients at once through the HTTP API, each sending the same --idempotent run
    and one of its own: one shared run, dense numbers, every answer a success. (Whether the
    idempotency race is lost at the very last moment depends on timing over HTTP; the race
    itself is forced in tests/server/test_run_numbers.py.)"""
    before = pg_spell.api("GET", "/api/runs?limit=1").json()["runs"][0]["id"]
    same = "echo same-on-postgres"
    start = Barrier(CLIENTS)

    def client(i: int) -> list[int]:
        start.wait()
        answers = [pg_spell.api("POST", "/api/runs", json={"command": c, "idempotent": once})
                   for c, once in ((same, True), (f"echo client-{i}", False))]
        assert all(a.status_code == 201 for a in answers), [(a.status_code, a.text[:300])
                                                            for a in answers]
        return [a.json()["id"] for a in answers]

    with ThreadPoolExecutor(CLIENTS) as pool:
        numbers = list(pool.map(client, range(CLIENTS)))
    shared = {n[0] for n in numbers}
    assert len(shared) == 1  # one run for the five identical submissions
    assert sorted(shared | {n[1] for n in numbers}) == list(
        range(before + 1, before + CLIENTS + 2))
    for number in range(before + 1, before + CLIENTS + 2):
        pg_spell.wait_status(number, "complete")
    again = pg_spell.api("POST", "/api/runs", json={"command": same, "idempotent": True})
    assert again.json()["id"] == shared.pop() and again.json()["reused"] is True
    listed = pg_spell("ps", "-n", "0", "--no-trunc")
    assert listed.returncode == 0
    ids = [int(line.split()[0]) for line in listed.stdout.splitlines()
           if line.split() and line.split()[0].isdigit()]
    assert ids == list(range(before + CLIENTS + 1, 0, -1))  # every run, newest first, once


def test_the_record_outlives_the_server(pg_spell: Spell) -> None:
    assert pg_spell("server", "stop").returncode == 0
    started = pg_spell("server", "start")
    assert started.returncode == 0, started.stderr
    shown = pg_spell("info", "1")
    assert shown.returncode == 0 and "complete" in shown.stdout

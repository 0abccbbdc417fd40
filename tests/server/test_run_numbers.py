"""Run numbers under concurrent submissions from several clients, on SQLite and Postgres:
dense (1..N, no gap), unique, and no error reaching a client (SQLite's "database is locked"
included). Each client has its own engine, as separate server processes would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from types import SimpleNamespace

from sqlalchemy import select

from spellray.schemas import MachineType, RunRequest
from spellray.server import db
from spellray.server.services.run_preparation import PreparedRun
from spellray.server.services.runs import RunService

CLIENTS = 5
RUNS_EACH = 10
# Each client also sends this many --idempotent copies of one shared run: the copies that
# lose the claim race roll their run row back, which must not leave a hole in the numbers.
TWINS_EACH = 2


def _submission(command: str, idempotent: bool) -> tuple[RunRequest, PreparedRun]:
    request = RunRequest(command=command, idempotent=idempotent)
    prepared = PreparedRun(machine_type=MachineType(name="CPU", num_cpus=1), git=None,
                           ray_env={}, env_digest=None, command=command,
                           identity=f"identity of {command}", spec={})
    return request, prepared


def _client(url: str, client: int, start: Barrier) -> list[tuple[str, int, bool]]:
    """One client's submissions through the service's real insert path, on an engine of
    its own; (command, run number, made new) for each."""
    engine = db.make_engine(url)
    service = RunService(SimpleNamespace(sessions=db.make_session_factory(engine)))  # type: ignore[arg-type]
    commands = [(f"python train.py --client {client} --run {n}", False)
                for n in range(RUNS_EACH)]
    for twin in range(TWINS_EACH):  # spread among the others
        commands.insert(twin * RUNS_EACH // TWINS_EACH, ("python shared.py", True))
    done = []
    start.wait()  # every client starts at once
    try:
        for command, idempotent in commands:
            run_id, token = service._insert(*_submission(command, idempotent))
            done.append((command, run_id, token is not None))
    finally:
        engine.dispose()
    return done


def test_concurrent_submissions_get_dense_unique_numbers(database_url: str) -> None:
    start = Barrier(CLIENTS)
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for f in [pool.submit(_client, database_url, c, start)
                               for c in range(CLIENTS)] for r in f.result()]
    made = sorted(run_id for _, run_id, new in results if new)
    distinct = CLIENTS * RUNS_EACH
    assert made == list(range(1, distinct + 2))  # every distinct run, and one shared one
    shared = {run_id for command, run_id, _ in results if command == "python shared.py"}
    assert len(shared) == 1  # every --idempotent copy got the same run
    engine = db.make_engine(database_url)
    try:
        with db.make_session_factory(engine)() as session:
            rows = session.execute(select(db.Run.id, db.Run.command)).all()
            claims = session.scalars(select(db.IdempotencyClaim.run_id)).all()
    finally:
        engine.dispose()
    assert sorted(r.id for r in rows) == made
    assert {r.command for r in rows if r.id in shared} == {"python shared.py"}
    assert claims == list(shared)

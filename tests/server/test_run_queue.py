"""The run queue's order and positions, and the room a queued run needs, on a real DB."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy.orm import Session

from spellray.schemas import MachineType, RunStatus
from spellray.server import db
from spellray.server.reconcile.queue import RunQueue, _fits, _job_shape, _take
from spellray.server.services.run_queue import (
    HELD,
    dequeue,
    enqueue,
    held,
    job_env,
    queued,
    waiting,
)
from spellray.server.services.run_status import change_status
from spellray.settings import Settings

CPU = MachineType(name="CPU", num_cpus=1)
BIG = MachineType(name="BIG", num_cpus=2, min_machines=0, max_machines=1)
GPU = MachineType(name="GPU", num_cpus=1, num_gpus=1)


def _queue(session: Session, workflow_id: int | None = None,
           machine_type: MachineType = CPU, owner: str = "admin") -> int:
    run = db.Run(command="echo", machine_type=machine_type.name, status="requested", spec={},
                 owner=owner)
    session.add(run)
    session.flush()
    run.workflow_id = run.id if workflow_id == 0 else workflow_id  # 0: a manager
    enqueue(session, run, machine_type, machine_type, 1, {"entrypoint": "true"})
    session.commit()
    return run.id


def test_fifo_per_owner_and_turn_by_turn_across_owners(session: Session) -> None:
    a1, a2, a3 = (_queue(session, owner="alice") for _ in range(3))
    # A team's workflow: its manager and its runs are the team's, one owner in the queue.
    w = _queue(session, workflow_id=0, owner="vision")
    b1, b2 = (_queue(session, workflow_id=w, owner="vision") for _ in range(2))
    assert [r.run_id for r in queued(session)] == [a1, w, a2, b1, a3, b2]
    said = waiting(session, [a1, b1, b2, a3])
    assert said == {a1: "waiting for a CPU machine", b1: "waiting for a CPU machine (3 ahead)",
                    b2: "waiting for a CPU machine (5 ahead)",
                    a3: "waiting for a CPU machine (4 ahead)"}


def test_positions_count_only_the_same_machine_type(session: Session) -> None:
    _queue(session)
    _queue(session)
    gpu = _queue(session, machine_type=GPU)
    assert waiting(session, [gpu]) == {gpu: "waiting for a GPU machine"}
    assert dequeue(session, gpu) and not dequeue(session, gpu)
    session.commit()
    assert waiting(session, [gpu]) == {}


def test_a_run_that_ends_however_it_ends_leaves_the_queue(session: Session) -> None:
    first, second = _queue(session), _queue(session)
    change_status(session, session.get(db.Run, first), RunStatus.failed, "timed out")
    session.commit()
    assert [r.run_id for r in queued(session)] == [second]
    assert waiting(session, [second]) == {second: "waiting for a CPU machine"}


def test_room_is_per_node_and_all_bundles_at_once() -> None:
    free = [{"CPU": 1.0}, {"CPU": 2.0, "GPU": 1.0}]
    assert not _fits(free, {"CPU": 1.0}, 4)  # 3 CPUs in all: nothing is taken
    assert free == [{"CPU": 1.0}, {"CPU": 2.0, "GPU": 1.0}]
    assert _fits(free, {"CPU": 1.0, "GPU": 1.0}, 1)  # only the second node has a GPU
    assert free == [{"CPU": 1.0}, {"CPU": 1.0, "GPU": 0.0}]
    assert _fits(free, {}, 1)  # a workflow's manager needs no room
    assert _take(free, {"CPU": 1.0}) and _take(free, {"CPU": 1.0})
    assert not _take(free, {"CPU": 1.0})


def test_a_pending_jobs_room_is_read_from_its_metadata() -> None:
    job = {"num_cpus": 1, "num_gpus": 0, "resources": {"spellray-machine:big": 1}}
    shape = held(job)
    assert shape == {"CPU": 1.0, "spellray-machine:big": 1.0}
    assert _job_shape(SimpleNamespace(metadata={HELD: json.dumps(shape)})) == shape
    assert _job_shape(SimpleNamespace(metadata=None)) == {}  # not a run's job: unknown


def test_the_servers_stats_interval_reaches_its_runs_unless_a_run_sets_its_own(
        tmp_path: Path) -> None:
    def env(settings: Settings, user: dict[str, str]) -> dict[str, str]:
        # job_env reads the context's settings and URL only.
        ctx = SimpleNamespace(settings=settings, advertise_url="http://127.0.0.1:1")
        return job_env(ctx, user, "token")  # type: ignore[arg-type]

    given = Settings(home=tmp_path, stats_interval_seconds=2)
    assert env(given, {})["SPELLRAY_STATS_INTERVAL_SECONDS"] == "2.0"
    own = {"SPELLRAY_STATS_INTERVAL_SECONDS": "0"}
    assert env(given, own)["SPELLRAY_STATS_INTERVAL_SECONDS"] == "0"
    # Not given to the server: each node's own (or the default) holds.
    assert "SPELLRAY_STATS_INTERVAL_SECONDS" not in env(Settings(home=tmp_path), {})


class _Capacity:
    """Ray's side of the queue, at its narrowest seam: free room by node, and the
    autoscaler requests the queue makes (recorded)."""

    def __init__(self, free: dict[str, dict[str, float]]) -> None:
        self.room, self.requests = free, []

    def free(self) -> dict[str, dict[str, float]]:
        return {node: dict(r) for node, r in self.room.items()}

    def request(self, bundles: list[dict[str, float]]) -> None:
        self.requests.append(bundles)


def test_a_growable_types_run_stays_asked_for_from_queued_until_it_ends(
        session: Session, monkeypatch) -> None:
    """The request must not drop between the hand-off to Ray and the job holding its room:
    the autoscaler would take the idle-looking node back under the starting job."""
    launched = _fake_launch(session, monkeypatch)
    ctx = _ctx(session, BIG)
    run_id = _queue(session, machine_type=BIG)
    shape = {"CPU": 2.0}
    capacity = _Capacity({})  # no machine of the type yet
    queue = RunQueue(ctx, capacity)
    assert queue.reconcile(dict)  # still queued
    assert capacity.requests[-1] == [shape] and launched == []
    capacity.room = {"node": {"CPU": 2.0}}  # the autoscaler's machine came
    assert not queue.reconcile(dict)
    assert launched == [run_id] and capacity.requests[-1] == [shape]
    queue.reconcile()  # handed to Ray, not yet holding anything: still asked for
    assert capacity.requests[-1] == [shape]
    change_status(session, session.get(db.Run, run_id), RunStatus.complete, None)
    session.commit()
    queue.reconcile(dict)  # ended: the request is withdrawn
    assert capacity.requests[-1] == []


def test_a_started_job_counts_until_ray_runs_it(session: Session, monkeypatch) -> None:
    """Quick passes do not list Ray's jobs: the queue remembers the jobs it started, so the
    GCS's view of free room, which lags a new job, does not start a second run in one slot."""
    launched = _fake_launch(session, monkeypatch)
    ctx = _ctx(session, CPU)
    first, second = _queue(session), _queue(session)
    queue = RunQueue(ctx, _Capacity({"node": {"CPU": 1.0}}))  # the GCS has not seen it yet
    assert queue.reconcile() and launched == [first]
    # Marked `building` (a pending job with a runtime_env), but Ray has not started it yet.
    change_status(session, session.get(db.Run, first), RunStatus.building, None)
    session.commit()
    assert queue.reconcile() and launched == [first]  # its slot is taken: the second waits
    assert list(queue.starting) == [first]
    ctx.ray.states[f"spellray-abc-run-{first}"] = "RUNNING"
    queue.reconcile()  # Ray runs it: the GCS's free room is the truth again
    assert launched == [first, second]
    assert list(queue.starting) == [second]
    # A restarted server remembers nothing: the full pass counts Ray's pending jobs.
    third = _queue(session)
    fresh = RunQueue(ctx, _Capacity({"node": {"CPU": 1.0}}))
    pending = SimpleNamespace(status=SimpleNamespace(value="PENDING"),
                              metadata={HELD: json.dumps({"CPU": 1.0}),
                                        "spellray.run": str(second)})
    assert fresh.reconcile(lambda: {f"spellray-abc-run-{second}": pending})
    assert launched == [first, second]
    assert not fresh.reconcile(dict) and launched == [first, second, third]


class _Ray:
    """Ray's job statuses at the narrowest seam: PENDING unless a test says otherwise."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def job(self, submission_id: str) -> SimpleNamespace:
        return SimpleNamespace(status=SimpleNamespace(
            value=self.states.get(submission_id, "PENDING")))


def _ctx(session: Session, machine_type: MachineType) -> SimpleNamespace:
    return SimpleNamespace(sessions=lambda: _NoClose(session), server_id="abc",
                           machine_types={machine_type.name: machine_type}, ray=_Ray())


def _fake_launch(session: Session, monkeypatch) -> list[int]:
    """run_queue.launch's DB writes, without Ray: the runs it launched, in order."""
    launched: list[int] = []

    def launch(ctx: object, run_id: int) -> dict[str, float]:
        run = session.get(db.Run, run_id)
        run.ray_submission_id = f"job-{run_id}"
        dequeue(session, run_id)
        session.commit()
        launched.append(run_id)
        return {"CPU": 1.0} if run.machine_type == "CPU" else {"CPU": 2.0}

    monkeypatch.setattr("spellray.server.services.run_queue.launch", launch)
    return launched


class _NoClose:
    """The test's one session as the context manager ctx.sessions() gives."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, *exc: object) -> None:
        return None

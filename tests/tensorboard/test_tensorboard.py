"""TensorBoard in the browser, end to end: a real spellray server over HTTP (no Ray: the runs
are rows made here, their event files written into storage with TensorBoard's own writer),
the real CLI, a real TensorBoard subprocess, its own HTTP API through the proxy."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from spellray.client import Client
from spellray.server import db
from spellray.storage.store import Storage
from tests.helpers import SPELL, RaylessServer, start_rayless_server, wait_for

# Small, so the idle stop can be seen; every request through the proxy restarts the clock,
# and the tests below keep asking while they use a TensorBoard.
IDLE_MINUTES = 0.25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaylessServer]:
    started = start_rayless_server(tmp_path_factory.mktemp("tb"),
                                   SPELLRAY_TENSORBOARD_IDLE_MINUTES=str(IDLE_MINUTES),
                                   SPELLRAY_TENSORBOARD_SYNC_SECONDS="1")
    yield started
    started.stop()


def add_run(server: RaylessServer, status: str, tensorboard_dir: str | None,
            search_id: int | None = None) -> int:
    """A run as the server keeps it, with the spec key ``--tensorboard-dir`` fills."""
    sessions = db.make_session_factory(db.make_engine(f"sqlite:///{server.home / 'spellray.db'}"))
    spec = {"tensorboard_dir": tensorboard_dir} if tensorboard_dir else {}
    with sessions() as session:
        run = db.Run(command="python train.py", machine_type="cpu", spec=spec, status=status,
                     kind="trial" if search_id else "run", hyper_search_id=search_id)
        session.add(run)
        session.commit()
        return run.id


def add_search(server: RaylessServer) -> int:
    sessions = db.make_session_factory(db.make_engine(f"sqlite:///{server.home / 'spellray.db'}"))
    with sessions() as session:
        search = db.HyperSearch(kind="grid", status="complete", spec={})
        session.add(search)
        session.commit()
        return search.id


class Events:
    """A run's event file, written with TensorBoard's own writer and put in storage where
    the runner copies it (runs/<id>/<tensorboard_dir>/)."""

    def __init__(self, server: RaylessServer, tmp: Path, run_id: int, folder: str) -> None:
        self.storage = Storage(str(server.home / "storage"))
        self.local = tmp / f"events-{run_id}"
        self.writer = EventFileWriter(str(self.local))
        self.target = f"runs/{run_id}/{folder}"

    def scalars(self, tag: str, values: dict[int, float]) -> None:
        for step, value in values.items():
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                tag=tag, simple_value=value)])
            self.writer.add_event(event_pb2.Event(step=step, wall_time=1.0 + step,
                                                  summary=summary))
        self.writer.flush()
        for file in self.local.iterdir():
            self.storage.upload_file(file, f"{self.target}/{file.name}")


def spell(server: RaylessServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SPELL, *args], env=server.env, capture_output=True, text=True,
                          timeout=300)


def login(url: str) -> httpx.Cookies:
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 303, answer.text
    return answer.cookies


def steps(browser: httpx.Client, set_path: str, run: int, tag: str) -> list[int]:
    answer = browser.get(f"{set_path}data/plugin/scalars/scalars",
                         params={"run": str(run), "tag": tag})
    return [step for _, step, _ in answer.json()] if answer.status_code == 200 else []


def test_tensorboard_shows_runs_by_number_through_the_proxy(server: RaylessServer,
                                                            tmp_path: Path) -> None:
    live = add_run(server, "running", "tb")
    done = add_run(server, "complete", "logs/tensorboard")
    live_events = Events(server, tmp_path, live, "tb")
    live_events.scalars("loss", {0: 1.0, 1: 0.5})
    Events(server, tmp_path, done, "logs/tensorboard").scalars("loss", {0: 2.0, 1: 1.5, 2: 1.0})

    opened = spell(server, "tensorboard", str(done), str(live), "--no-browser")
    assert opened.returncode == 0, opened.stderr
    url = opened.stdout.strip().splitlines()[-1]
    set_path = f"/tensorboard/runs-{live}-{done}/"
    assert url.startswith(f"{server.url}/tensorboard/login?code=")

    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == set_path
    cookies = answer.headers.get_list("set-cookie")
    # One login for every browser path: the same session for MLflow and TensorBoard.
    assert {c.split("Path=")[1].split(";")[0] for c in cookies} >= {"/mlflow", "/tensorboard"}
    assert all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
    again = httpx.get(url, timeout=30)
    assert again.status_code == 401 and "spell tensorboard" in again.text  # used up

    with httpx.Client(base_url=server.url, cookies=answer.cookies, timeout=60) as browser:
        page = browser.get(set_path)  # the page a browser opens, and its script
        assert page.status_code == 200 and "<title>TensorBoard</title>" in page.text
        script = page.text.split('src="index.js')[1].split('"')[0]
        assert browser.get(f"{set_path}index.js{script}").status_code == 200
        runs = browser.get(f"{set_path}data/runs")
        assert runs.status_code == 200, runs.text
        assert sorted(runs.json()) == sorted([str(live), str(done)])
        assert steps(browser, set_path, done, "loss") == [0, 1, 2]
        values = browser.get(f"{set_path}data/plugin/scalars/scalars",
                             params={"run": str(live), "tag": "loss"}).json()
        assert [(step, value) for _, step, value in values] == [(0, 1.0), (1, 0.5)]

        # The live run writes more: its grown event file reaches TensorBoard.
        live_events.scalars("loss", {2: 0.25, 3: 0.125})
        wait_for(lambda: steps(browser, set_path, live, "loss") == [0, 1, 2, 3],
                 timeout=120, what="the live run's new steps in TensorBoard")

        # The same session opens MLflow (one login); the API stays token-only.
        mlflow = browser.get("/mlflow/api/2.0/mlflow/experiments/search",
                             params={"max_results": 5})
        assert mlflow.status_code == 200, mlflow.text
        assert browser.get("/api/runs").status_code == 401

    # Without the cookie (or with a wrong one): refused; a program's admin token is let in.
    for headers in ({}, {"Cookie": "spellray_ui=nope"}, {"Authorization": "Bearer nope"}):
        refused = httpx.get(f"{server.url}{set_path}data/runs", headers=headers, timeout=30)
        assert refused.status_code == 401, refused.text
        assert "spell tensorboard" in refused.json()["error"]["message"]
    with_token = httpx.get(f"{server.url}{set_path}data/runs", timeout=30,
                           headers={"Authorization": f"Bearer {server.token}"})
    assert with_token.status_code == 200 and str(live) in with_token.json()

    # Asking again reuses the running TensorBoard.
    client = Client(server.url, server.token)
    board = client.tensorboard.open([live, done])
    assert board.path == set_path and board.active
    assert [b.set_id for b in client.tensorboard.list()].count(board.set_id) == 1


def test_a_search_shows_its_trials(server: RaylessServer, tmp_path: Path) -> None:
    search = add_search(server)
    trials = [add_run(server, "complete", "tb", search_id=search) for _ in range(2)]
    for trial in trials:
        Events(server, tmp_path, trial, "tb").scalars("acc", {0: 0.1, 1: 0.2})
    opened = spell(server, "tensorboard", "--search", str(search), "--no-browser")
    assert opened.returncode == 0, opened.stderr
    with httpx.Client(base_url=server.url, timeout=60,
                      cookies=login(opened.stdout.strip().splitlines()[-1])) as browser:
        set_path = f"/tensorboard/search-{search}/"
        assert sorted(browser.get(f"{set_path}data/runs").json()) == sorted(map(str, trials))
        assert steps(browser, set_path, trials[1], "acc") == [0, 1]


def test_a_run_without_a_tensorboard_folder_is_refused(server: RaylessServer) -> None:
    plain = add_run(server, "complete", None)
    refused = spell(server, "tensorboard", str(plain), "--no-browser")
    assert refused.returncode != 0 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"run {plain}" in refused.stderr and "--tensorboard-dir" in refused.stderr
    missing = spell(server, "tensorboard", "999999", "--no-browser")
    assert missing.returncode != 0 and "no run 999999" in missing.stderr
    nothing = spell(server, "tensorboard", "--no-browser")
    assert nothing.returncode != 0 and "--search" in nothing.stderr


def test_an_unused_tensorboard_is_stopped(server: RaylessServer, tmp_path: Path) -> None:
    run = add_run(server, "complete", "tb")
    Events(server, tmp_path, run, "tb").scalars("loss", {0: 1.0})
    client = Client(server.url, server.token)
    board = client.tensorboard.open([run])  # returns once it answers
    prefix = f"/tensorboard/{board.set_id}"
    process = next(p for p in psutil.process_iter(["cmdline"])
                   if prefix in (p.info["cmdline"] or []))
    # Nobody asks it anything now: after the idle time it is gone, process and all.
    wait_for(lambda: board.set_id not in [b.set_id for b in client.tensorboard.list()],
             timeout=IDLE_MINUTES * 60 + 120, interval=1, what="the idle TensorBoard to stop")
    assert not process.is_running()
    gone = httpx.get(f"{server.url}{board.path}data/runs", timeout=30,
                     headers={"Authorization": f"Bearer {server.token}"})
    assert gone.status_code == 404 and "spell tensorboard" in gone.json()["error"]["message"]


def test_a_killed_server_s_tensorboards_are_stopped_by_the_next(tmp_path: Path) -> None:
    first = start_rayless_server(tmp_path / "home")
    try:
        run = add_run(first, "complete", "tb")
        Events(first, tmp_path, run, "tb").scalars("loss", {0: 1.0})
        board = Client(first.url, first.token).tensorboard.open([run])
        process = next(p for p in psutil.process_iter(["cmdline"])
                       if f"/tensorboard/{board.set_id}" in (p.info["cmdline"] or []))
    finally:
        first.process.kill()  # no shutdown: its TensorBoard lives on
        first.process.wait()
    assert process.is_running()
    second = start_rayless_server(tmp_path / "home")
    try:
        wait_for(lambda: not process.is_running(), timeout=60,
                 what="the next server to stop the leftover TensorBoard")
        assert not (tmp_path / "home" / "tensorboard" / board.set_id / "logs").exists()
    finally:
        second.stop()

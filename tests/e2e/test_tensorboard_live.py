"""A real run on Ray that trains while writing TensorBoard scalars: during the run, TensorBoard
(through the server's proxy, with the session cookie) lists it and returns its scalars; after
it, every step; without the cookie, 401."""

from __future__ import annotations

from pathlib import Path

import httpx

from spellray.client import Client
from tests.helpers import Spell, wait_for

# Writes a step every 0.2 s until the test says stop (a file it creates), then 3 more steps.
TRAIN = """
import os, time
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

writer = EventFileWriter("tb")

def step(n):
    value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (n + 1))
    writer.add_event(event_pb2.Event(step=n, wall_time=time.time(),
                                     summary=summary_pb2.Summary(value=[value])))
    writer.flush()

n = 0
while not os.path.exists(os.environ["STOP_FILE"]):
    step(n)
    n += 1
    time.sleep(0.2)
for _ in range(3):
    step(n)
    n += 1
open("steps.txt", "w").write(str(n))
"""


def test_tensorboard_shows_a_run_as_it_trains(spell: Spell, project: Path,
                                             tmp_path: Path) -> None:
    (project / "train_tb.py").write_text(TRAIN)
    stop_file = tmp_path / "stop"
    started = spell("run", "-b", "--tensorboard-dir", "tb", "-e", f"STOP_FILE={stop_file}",
                    "python train_tb.py", cwd=project)
    assert started.returncode == 0, started.stderr
    run_id = int(started.stdout.split()[1])
    client = Client(spell.url, spell.token)
    board = client.tensorboard.open([run_id])
    login = httpx.get(client.tensorboard.login_url(board), timeout=30)
    assert login.status_code == 303
    with httpx.Client(base_url=spell.url, cookies=login.cookies, timeout=60) as browser:
        def steps() -> list[int]:
            answer = browser.get(f"{board.path}data/plugin/scalars/scalars",
                                 params={"run": str(run_id), "tag": "loss"})
            return [s for _, s, _ in answer.json()] if answer.status_code == 200 else []

        # During the run: TensorBoard lists it by number, with some of its steps.
        wait_for(lambda: len(steps()) >= 3, timeout=180, interval=1,
                 what="the live run's first steps in TensorBoard")
        assert str(run_id) in browser.get(f"{board.path}data/runs").json()
        assert spell.run_info(run_id)["status"] == "running"
        stop_file.write_text("")
        spell.wait_status(run_id, "complete")
        total = int((spell.storage / "runs" / str(run_id) / "steps.txt").read_text())
        wait_for(lambda: steps() == list(range(total)), timeout=180, interval=1,
                 what="every step in TensorBoard after the run")
    assert httpx.get(f"{spell.url}{board.path}data/runs", timeout=30).status_code == 401

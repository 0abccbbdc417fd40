"""--tensorboard-dir end to end: the real CLI, server and Ray head; a run writes TensorBoard
scalars with PyTorch's SummaryWriter while the test watches its event file appear and grow in
storage, then reads every step back with TensorBoard's own reader. The run waits for the test
at two gates (files it creates), so "during the run" needs no timing."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.e2e.test_hyper import search_id_of, wait_search
from tests.helpers import Spell, wait_for

TRAIN = '''
import os, time
from torch.utils.tensorboard import SummaryWriter

writer = SummaryWriter("/spell/tb/train" if os.path.isdir("/spell") and
                       os.path.samefile("/spell", ".") else "tb/train")
def steps(first, last):
    for step in range(first, last):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.flush()
def wait(gate):
    while not os.path.exists(gate):
        time.sleep(0.1)
steps(0, 10)
wait(os.environ["GATE"] + ".1")
steps(10, 20)
wait(os.environ["GATE"] + ".2")
steps(20, 30)
writer.close()
open("model.txt", "w").write("done")
'''


def loss_steps(folder: Path) -> list[int]:
    """The ``loss`` steps TensorBoard reads from the event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not folder.is_dir():
        return []
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return [s.step for s in accumulator.Scalars("loss")] if "loss" in \
        accumulator.Tags()["scalars"] else []


def event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []


def test_event_files_reach_storage_while_the_run_trains(spell: Spell, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    gate = tmp_path / "gate"
    # This Python: the one with torch (the dev extra).
    run_id = spell.submit_background(f"{sys.executable} train.py", "--tensorboard-dir", "/spell/tb",
                                     "-e", "SPELLRAY_LIVE_SYNC_SECONDS=1", "-e",
                                     f"GATE={gate}", cwd=project)
    stored = spell.storage / "runs" / str(run_id) / "tb" / "train"

    def first_steps() -> bool:
        if spell.run_info(run_id)["status"] in ("complete", "failed", "killed", "stopped"):
            raise AssertionError(spell("logs", str(run_id)).stdout)
        return loss_steps(stored) == list(range(10))

    wait_for(first_steps, timeout=180, what="the first ten steps in storage")
    assert spell.run_info(run_id)["status"] == "running"
    [first] = event_files(stored)
    size = first.stat().st_size
    gate.with_name("gate.1").touch()
    wait_for(lambda: loss_steps(stored) == list(range(20)), what="ten more steps in storage")
    assert spell.run_info(run_id)["status"] == "running"
    assert event_files(stored) == [first] and first.stat().st_size > size  # it grew
    gate.with_name("gate.2").touch()

    info = spell.wait_status(run_id, "complete", "failed")
    assert info["status"] == "complete", spell("logs", str(run_id)).stdout
    assert info["tensorboard_dir"] == "tb"
    assert loss_steps(stored) == list(range(30))  # every step, after the last pass
    shown = spell("info", str(run_id)).stdout
    assert f"tb (runs/{run_id}/tb)" in shown
    assert f"tb/train/{first.name}" in shown  # an output like any other
    assert (spell.storage / "runs" / str(run_id) / "model.txt").read_text() == "done"


def test_each_trial_of_a_search_saves_its_own_folder(spell: Spell, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(
        "import sys\n"
        "from tensorboard.compat.proto.event_pb2 import Event\n"
        "from tensorboard.compat.proto.summary_pb2 import Summary\n"
        "from tensorboard.summary.writer.event_file_writer import EventFileWriter\n"
        "writer = EventFileWriter('logs')\n"
        "for step in range(int(sys.argv[1])):\n"
        "    writer.add_event(Event(step=step, summary=Summary(value=[\n"
        "        Summary.Value(tag='loss', simple_value=float(step))])))\n"
        "writer.close()\n")
    done = spell("hyper", "grid", "--param", "n=3,5", "--tensorboard-dir", "logs",
                 f"{sys.executable} train.py :n:", cwd=project)
    ended = wait_search(spell, search_id_of(done), "complete")
    found = {}
    for run in ended["runs"]:
        assert run["status"] == "complete" and run["tensorboard_dir"] == "logs"
        found[run["params"]["n"]] = loss_steps(spell.storage / "runs" / str(run["id"]) / "logs")
    assert found == {"3": [0, 1, 2], "5": [0, 1, 2, 3, 4]}

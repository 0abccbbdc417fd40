"""`spell run --distributed N` on the session's Ray head (8 CPUs): real PyTorch DDP and
Horovod ranks, a failing rank, and more ranks than the cluster holds."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import make_spell
from tests.helpers import Spell, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS = ("-m", "public/digits:data")
# A long command printing ticks, per rank.
TICKS = ("python -c \"import time\nfor i in range(600): print('tick', i, flush=True); "
         "time.sleep(0.2)\"")


def need(module: str) -> None:
    """These tests need torch (and horovod): missing is a broken set-up, not a skip."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed: run `bash scripts/install_horovod.sh` "
                    "(it installs torch==2.13.0 and builds horovod 0.28.1)")


@pytest.fixture(scope="module")
def spell(tmp_path_factory: pytest.TempPathFactory, ray_head: str) -> Iterator[Spell]:
    """The module's server, with machine types of 4 and 16 CPUs besides `CPU`."""
    installation = make_spell(tmp_path_factory.mktemp("spell"), ray_head)
    (installation.home / "machine_types.json").write_text(json.dumps(
        [{"name": "cpu4", "num_cpus": 4}, {"name": "cpu16", "num_cpus": 16}]))
    started = installation("server", "start")
    assert started.returncode == 0, started.stderr
    yield installation
    installation("server", "stop")


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("code")
    for name in ("ddp_train.py", "horovod_train.py"):
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


def log_of(spell: Spell, run_id: int) -> str:
    return spell("logs", str(run_id)).stdout


def rank_processes(run_id: int) -> list[psutil.Process]:
    """The user's commands still running for ``run_id``: their environment names the run and
    a rank (their cwd says nothing: in the /spell namespace it is /spell)."""
    found = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("SPELLRAY_RUN_ID") == str(run_id) and "RANK" in env:
            found.append(process)
    return found


def test_ddp_two_ranks_train_with_synchronized_gradients(spell: Spell, code: Path) -> None:
    need("torch")
    run_id = spell.submit_background("python ddp_train.py --data data/digits.csv --epochs 3",
                                     "--distributed", "2", *DIGITS, cwd=code)
    info = spell.wait_status(run_id, "complete", "failed", timeout=240)
    log = log_of(spell, run_id)
    assert info["status"] == "complete", log
    assert info["distributed"] == 2
    assert "[rank 0] rank 0 of 2" in log and "[rank 1] rank 1 of 2" in log
    run_dir = spell.storage / "runs" / str(run_id)
    rank0 = json.loads((run_dir / "model" / "params.json").read_text())
    rank1 = json.loads((run_dir / "rank-1" / "model" / "params.json").read_text())
    assert (rank0["rank"], rank1["rank"], rank0["world_size"]) == (0, 1, 2)
    assert rank0["sha256"] == rank1["sha256"]  # DDP averaged the gradients on both ranks
    described = spell("info", str(run_id)).stdout
    assert "2 ranks" in described and "rank-1/model/params.json" in described


# A plain gloo script as users write it: no destroy_process_group() at the end.
PLAIN_ALLREDUCE = """\
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
total = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(total)
print(f"rank {dist.get_rank()} sum {total.item()}", flush=True)
"""


def test_a_plain_gloo_script_exits_cleanly_every_time(spell: Spell, tmp_path: Path) -> None:
    """Without spellray's exit hook (runner/rank_site) about 1 in 5 such runs aborted here
    ("terminate called without an active exception", exit 134): several at once, so the
    machine is as busy as it was when they did."""
    need("torch")
    (tmp_path / "allreduce.py").write_text(PLAIN_ALLREDUCE)
    runs = [spell.submit_background("python allreduce.py", "--distributed", "2", cwd=tmp_path)
            for _ in range(6)]
    for run_id in runs:
        info = spell.wait_status(run_id, "complete", "failed", timeout=240)
        log = log_of(spell, run_id)
        assert info["status"] == "complete", (info["status_reason"], log)
        assert "[rank 0] rank 0 sum 3.0" in log and "[rank 1] rank 1 sum 3.0" in log
        assert "terminate called" not in log


def test_a_failing_rank_stops_the_others_and_fails_the_run(spell: Spell, code: Path) -> None:
    need("torch")
    run_id = spell.submit_background(
        "python ddp_train.py --epochs 100000 --fail-rank 1 --fail-code 3",
        "--distributed", "2", cwd=code)
    info = spell.wait_status(run_id, "failed", "complete", timeout=240)
    assert info["status"] == "failed" and info["exit_code"] == 3, (info, log_of(spell, run_id))
    assert "rank 1 exited with code 3" in info["status_reason"]
    assert "failing on purpose" in info["status_reason"]  # its last lines
    log = log_of(spell, run_id)
    assert "[rank 1] rank 1 failing on purpose" in log and "[rank 0] done" not in log
    # rank 0 was blocked in an allreduce with the dead rank: it was ended, not left waiting
    wait_for(lambda: not rank_processes(run_id), timeout=60, what="rank 0 to be ended")


def test_more_ranks_than_the_cluster_can_ever_hold_fail_at_once(spell: Spell,
                                                                 code: Path) -> None:
    run_id = spell.submit_background("echo never", "-t", "cpu4", "--distributed", "3",
                                     cwd=code)
    info = spell.wait_status(run_id, "failed", "complete", timeout=120)
    expected = ("--distributed needs 3 x {CPU: 4} but the cluster has 8 CPU (8 free) on 1 "
                "node(s): its nodes can hold 2 at most")
    assert info["status_reason"].startswith(expected), info["status_reason"]
    assert expected in log_of(spell, run_id)
    assert expected in spell("info", str(run_id)).stdout.replace("\n", "")
    big = spell.submit_background("echo never", "-t", "cpu16", "--distributed", "2", cwd=code)
    reason = spell.wait_status(big, "failed", timeout=120)["status_reason"]
    assert "no node can hold even one" in reason


def test_ranks_wait_for_room_saying_what_is_missing_and_kill_ends_them(spell: Spell,
                                                                       code: Path) -> None:
    blocker = spell.submit_background(TICKS, "-t", "cpu4", cwd=code)
    wait_for(lambda: "tick 1" in log_of(spell, blocker), what="the blocker to run")
    run_id = spell.submit_background(TICKS, "-t", "cpu4", "--distributed", "2", cwd=code)
    waiting = "waiting for 2 x {CPU: 4}: the cluster has 8 CPU (4 free) on 1 node(s)"
    wait_for(lambda: waiting in (spell.run_info(run_id)["status_reason"] or ""),
             what="the run to say what it waits for")
    assert spell.run_info(run_id)["status"] == "building"
    assert waiting in log_of(spell, run_id)
    assert spell("kill", str(blocker)).returncode == 0
    wait_for(lambda: "[rank 1] tick 1" in (text := log_of(spell, run_id))
             and "[rank 0] tick 1" in text, timeout=120, what="both ranks to run")
    assert len(rank_processes(run_id)) >= 2  # what the check below looks for is findable
    assert spell("kill", str(run_id)).returncode == 0
    assert spell.wait_status(run_id, "killed")["status"] == "killed"
    wait_for(lambda: not rank_processes(run_id), timeout=60, what="every rank to end")


def test_horovod_two_ranks(spell: Spell, code: Path) -> None:
    need("torch")
    need("horovod")
    run_id = spell.submit_background(
        "python horovod_train.py --data data/digits.csv --epochs 3", "--distributed", "2",
        *DIGITS, cwd=code)
    info = spell.wait_status(run_id, "complete", "failed", timeout=240)
    log = log_of(spell, run_id)
    assert info["status"] == "complete", log
    assert "[rank 0] horovod rank 0 of size 2" in log
    assert "[rank 1] horovod rank 1 of size 2" in log
    run_dir = spell.storage / "runs" / str(run_id)
    rank0 = json.loads((run_dir / "model" / "params.json").read_text())
    rank1 = json.loads((run_dir / "rank-1" / "model" / "params.json").read_text())
    assert rank0["size"] == rank1["size"] == 2
    assert rank0["allreduce"] == rank1["allreduce"] == 3.0
    assert rank0["sha256"] == rank1["sha256"]


def test_bad_distributed_values_are_one_clear_line(spell: Spell, code: Path) -> None:
    for value in ("0", "1000"):
        done = spell("run", "--distributed", value, "echo hi", cwd=code)
        assert done.returncode != 0
        assert "give the number of ranks, from 1 to 256" in done.stderr
        assert "Traceback" not in done.stderr
    hyper = spell("hyper", "grid", "--param", "a=1,2", "--distributed", "2", "echo :a:",
                  cwd=code)
    assert hyper.returncode != 0 and "not supported by spell hyper" in hyper.stderr

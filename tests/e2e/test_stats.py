"""Hardware stats end to end: real runs on the session's Ray head sampled by their runners,
`spell stats` (the real CLI) and ``client.runs.stats`` over the real server, MLflow's own
REST API for the ``system/`` metrics, and a distributed run's samples tagged by rank."""

from __future__ import annotations

from pathlib import Path

import httpx

from spellray.client import Client
from tests.helpers import Spell

FAST = ("-e", "SPELLRAY_STATS_INTERVAL_SECONDS=0.5")
# 200 MB in four written steps (so resident), held a while; its own clock in the log.
ALLOCATE = (
    "import os, time\n"
    "print('start', time.time(), flush=True)\n"
    "print('order', os.environ.get('CUDA_DEVICE_ORDER'))\n"
    "blocks = []\n"
    "for i in range(4):\n"
    "    time.sleep(0.7)\n"
    "    blocks.append(b'x' * (50 * 1024 * 1024))\n"
    "time.sleep(1.5)\n"
    "print('end', time.time(), flush=True)\n"
)
# Runs until the test creates the file GO names.
WAIT_FOR_GO = (
    "import os, time\n"
    "while not os.path.exists(os.environ['GO']):\n"
    "    time.sleep(0.1)\n"
)


def _client(spell: Spell) -> Client:
    return Client(spell.url, spell.token)


def _clock(log: str, word: str) -> float:
    return float(next(line.split()[1] for line in log.splitlines() if line.startswith(word)))


def test_finished_run_stats_cover_the_run_and_show_its_memory(spell: Spell,
                                                              tmp_path: Path) -> None:
    (tmp_path / "allocate.py").write_text(ALLOCATE)
    run_id = spell.submit_background("python allocate.py", *FAST, cwd=tmp_path)
    run = spell.wait_status(run_id, "complete", "failed")
    assert run["status"] == "complete", spell.diagnose(run_id)

    samples = _client(spell).runs.stats(run_id)
    log = _client(spell).runs.logs(run_id).text
    started, ended = _clock(log, "start"), _clock(log, "end")
    assert "order PCI_BUS_ID" in log  # CUDA numbers GPUs as NVML and Ray do
    # From before the command's first line to after its last (the final sample at the end).
    assert samples[0].time - samples[0].span_seconds <= started
    assert samples[-1].time >= ended
    assert len(samples) >= 6 and all(s.rank is None for s in samples)
    rss = [s.memory_rss_bytes for s in samples if s.memory_rss_bytes is not None]
    assert rss[0] < 100e6 and 200 * 2**20 <= max(rss) < 300 * 2**20  # rises to ~200 MB
    assert all(s.node_memory_total_bytes > s.node_memory_used_bytes > 0 for s in samples)
    assert all(s.gpus == [] for s in samples)  # no GPU here: no GPU columns, no error

    shown = spell("stats", str(run_id))
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id} (complete): {len(samples)} samples from" in shown.stdout
    rss_line = next(line for line in shown.stdout.splitlines() if "memory RSS" in line)
    assert "MB" in rss_line and any(bar in rss_line for bar in "▁▂▃▄▅▆▇█")
    assert "gpu" not in shown.stdout

    # MLflow's own API has them as system metrics, one value per sample.
    mlflow_run_id = spell.run_info(run_id)["mlflow_run_id"]
    history = httpx.get(f"{spell.url}/mlflow/api/2.0/mlflow/metrics/get-history",
                        params={"run_id": mlflow_run_id,
                                "metric_key": "system/process_memory_rss_megabytes"},
                        headers={"Authorization": f"Bearer {spell.token}"}, timeout=60).json()
    values = sorted(history["metrics"], key=lambda m: m["step"])
    assert [m["step"] for m in values] == list(range(len(rss)))
    assert max(m["value"] for m in values) == max(rss) / 1e6
    got = httpx.get(f"{spell.url}/mlflow/api/2.0/mlflow/runs/get",
                    params={"run_id": mlflow_run_id},
                    headers={"Authorization": f"Bearer {spell.token}"}, timeout=60).json()
    names = {m["key"] for m in got["run"]["data"]["metrics"]}
    assert not any(m.name.startswith("system/")  # spell metrics: the user's own only
                   for m in _client(spell).metrics.list(run_id))
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
            "system/system_memory_usage_percentage", "system/network_receive_megabytes",
            "system/network_transmit_megabytes"} <= names


def test_follow_prints_new_samples_and_returns_when_the_run_ends(spell: Spell,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "wait.py").write_text(WAIT_FOR_GO)
    go = tmp_path / "go"
    run_id = spell.submit_background("python wait.py", *FAST, "-e", f"GO={go}", cwd=tmp_path)
    follower = spell.popen("stats", "-f", str(run_id))
    assert follower.stdout is not None
    header = follower.stdout.readline()
    assert header.split()[:4] == ["TIME", "RANK", "CPU", "RSS"]
    first = follower.stdout.readline()  # a sample of the live run
    assert first.split()[1] == "-" and first.strip(), first
    assert spell.run_info(run_id)["status"] == "running"
    go.touch()
    rest, errors = follower.communicate(timeout=300)  # returns by itself at the run's end
    assert follower.returncode == 0, errors
    assert spell.run_info(run_id)["status"] == "complete"
    rows = [first, *rest.splitlines()]
    assert len(rows) == len(_client(spell).runs.stats(run_id))  # every sample, once


def test_sdk_follow_ends_with_the_run(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "wait.py").write_text(WAIT_FOR_GO)
    go = tmp_path / "go"
    run_id = spell.submit_background("python wait.py", *FAST, "-e", f"GO={go}", cwd=tmp_path)
    seen = []
    for sample in _client(spell).runs.stats(run_id, follow=True):
        seen.append(sample)
        if len(seen) == 2:
            go.touch()
    assert spell.run_info(run_id)["status"] == "complete"
    assert [s.time for s in seen] == [s.time for s in _client(spell).runs.stats(run_id)]


def test_unknown_run_is_one_line_and_not_found(spell: Spell) -> None:
    for args in (["99999"], ["-f", "99999"]):
        missing = spell("stats", *args)
        assert missing.returncode == 5 and missing.stdout == ""
        assert missing.stderr.strip().count("\n") == 0 and "no run 99999" in missing.stderr


def test_distributed_ranks_are_sampled_each_with_its_rank(spell: Spell, tmp_path: Path) -> None:
    (tmp_path / "allocate.py").write_text(ALLOCATE)
    run_id = spell.submit_background("python allocate.py", *FAST, "--distributed", "2",
                                     cwd=tmp_path)
    run = spell.wait_status(run_id, "complete", "failed")
    assert run["status"] == "complete", spell.diagnose(run_id)
    samples = _client(spell).runs.stats(run_id)
    assert {s.rank for s in samples} == {0, 1}
    for rank in (0, 1):
        rss = [s.memory_rss_bytes for s in samples if s.rank == rank and s.memory_rss_bytes]
        assert 200 * 2**20 <= max(rss) < 300 * 2**20
    shown = spell("stats", str(run_id))
    assert shown.returncode == 0 and shown.stdout.splitlines()[1].split()[0] == "RANK"
    for rank in (0, 1):  # by name: `spell metrics`' list leaves system metrics out
        series = _client(spell).metrics.get(run_id,
                                            f"system/rank_{rank}/cpu_utilization_percentage")
        assert len(series.values) == len([s for s in samples if s.rank == rank])

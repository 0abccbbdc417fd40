"""Text metrics and any-name metrics through the real server (no Ray behind it): stored,
merged with MLflow's numbers, shown by `spell metrics` and read back by spell.client."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest

import spell.client
from spell.api.exceptions import UnsupportedError, WaitError
from spellray.client import Client
from spellray.errors import Conflict, NotFound, RayUnavailable
from tests.helpers import SPELL, RaylessServer

NAMES = ["train/loss", "val acc", "précision", "acc (val)", "50%", "q?x#y", "/abs", "a/../b",
         "dir/"]


@pytest.fixture(scope="module")
def client(rayless_server: RaylessServer) -> Client:
    return Client(rayless_server.url, rayless_server.token)


@pytest.fixture(scope="module")
def run_id(client: Client) -> int:
    """A run (failed: there is no Ray to submit it to) whose metrics the test sends as its
    runner would."""
    with pytest.raises(RayUnavailable):
        client.runs.new("python train.py", code_dir=None, labels=["text-metrics"])
    run_id = client.runs.list(limit=1).runs[0].id
    points = [{"name": "phase", "value": "warm-up", "index": 0, "time": 1.0},
              {"name": "accuracy", "value": 0.5, "index": 0, "time": 1.0},
              {"name": "phase", "value": "[bold]train[/bold]", "index": 1, "time": 2.0},
              {"name": "accuracy", "value": 0.75, "index": 1, "time": 2.0},
              {"name": "phase", "value": "1.5", "index": 2, "time": 3.0}]
    points += [{"name": n, "value": float(i), "index": 0, "time": 4.0}
               for i, n in enumerate(NAMES)]
    client.metrics.log(run_id, points)
    return run_id


def test_text_and_numbers_come_back_in_order(client: Client, run_id: int) -> None:
    summaries = {s.name: s for s in client.metrics.list(run_id)}
    assert sorted(summaries) == sorted(["phase", "accuracy", *NAMES])
    phase = summaries["phase"]
    assert (phase.kind, phase.count, phase.last, phase.min, phase.max) == (
        "text", 3, "1.5", None, None)
    acc = summaries["accuracy"]
    assert (acc.kind, acc.count, acc.last, acc.min, acc.max) == ("number", 2, 0.75, 0.5, 0.75)
    values = client.metrics.get(run_id, "phase").values
    assert [(v.index, v.value) for v in values] == [
        (0, "warm-up"), (1, "[bold]train[/bold]"), (2, "1.5")]  # "1.5" stays text
    for i, name in enumerate(NAMES):  # MLflow's names and the ones it refuses alike
        assert [v.value for v in client.metrics.get(run_id, name).values] == [float(i)]
    assert client.metrics.score(run_id, "phase") is None  # text is never a score


def test_spell_metrics_shows_text(rayless_server: RaylessServer, run_id: int) -> None:
    def spell_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SPELL, *args], env=rayless_server.env, capture_output=True,
                              text=True, timeout=120)

    table = spell_cli("metrics", str(run_id))
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()
            if line.strip()}
    assert rows["phase"][1:3] == ["3", "1.5"]
    assert rows["accuracy"][1:5] == ["2", "0.75", "0.5", "0.75"]
    assert "précision" in table.stdout and "acc (val)" in table.stdout
    series = spell_cli("metrics", str(run_id), "phase")
    assert series.returncode == 0, series.stderr
    values = [line.split()[:2] for line in series.stdout.splitlines()[2:]]
    assert values == [["0", "warm-up"], ["1", "[bold]train[/bold]"], ["2", "1.5"]]
    assert spell_cli("metrics", str(run_id), "q?x#y").stdout.splitlines()[2].split()[:2] == [
        "0", "5"]


def test_spell_client_reads_them_and_waits(rayless_server: RaylessServer, run_id: int) -> None:
    # The admin's own name as the owner (tests/cli/test_owners.py makes things for a team).
    client = spell.client.SpellClient(token=rayless_server.token, base_url=rayless_server.url,
                                      owner="admin")
    run = client.runs.get(run_id)
    got = list(run.metrics("phase"))
    assert [(index, value) for _, index, value in got] == [
        (0, "warm-up"), (1, "[bold]train[/bold]"), (2, "1.5")]
    assert all(isinstance(when, datetime) for when, _, _ in got)
    assert list(run.metrics("never sent")) == []
    assert (run.status, run.user_exit_code, run.already_existed) == ("failed", None, False)
    run.wait_status(client.runs.BUILD_FAILED)  # spellray's failed is Spell's build failure too
    with pytest.raises(WaitError, match=f"run {run_id} ended failed .* without reaching "
                                        "complete"):
        run.wait_status(client.runs.COMPLETE)
    with pytest.raises(WaitError, match=r"before accuracy gt 0\.9"):
        run.wait_metric("accuracy", client.runs.GREATER_THAN, 0.9)
    run.wait_metric("accuracy", client.runs.GREATER_THAN_EQUALS, 0.75)
    run.wait_metric("phase", client.runs.EQUALS, "warm-up")
    run.add_label("spell-api")
    assert [r.id for r in client.runs.list(labels=["spell-api", "nope"])] == [run_id]
    run.remove_label("spell-api")
    assert client.runs.list(labels=["spell-api"]) == []
    assert client.owner == "admin"


def test_resources_models_and_servers_through_spell_client(
        rayless_server: RaylessServer, tmp_path: Path) -> None:
    client = spell.client.SpellClient(token=rayless_server.token, base_url=rayless_server.url)
    data = tmp_path / "weights"
    (data / "sub").mkdir(parents=True)
    (data / "w.txt").write_text("42")
    (data / "sub" / "b.txt").write_text("7")
    client.api.resources.upload(data, name="spell-api-weights")
    assert {e.name for e in client.resources.ls("uploads/spell-api-weights")} == {"w.txt", "sub"}
    assert client.resources.cp("uploads/spell-api-weights", tmp_path / "out") == 3
    assert (tmp_path / "out" / "spell-api-weights" / "sub" / "b.txt").read_text() == "7"
    with pytest.raises(Conflict, match="use -f"):  # nothing local is overwritten unasked
        client.resources.cp("uploads/spell-api-weights", tmp_path / "out")

    model = client.models.new("spellapimodel", "uploads/spell-api-weights", version="v7")
    assert (model.name, model.version) == ("spellapimodel", "v7")
    assert ("spellapimodel", "v7") in {(m.name, m.version) for m in client.models.list()}
    assert client.models.get("spellapimodel").resource == "uploads/spell-api-weights"
    with pytest.raises(UnsupportedError, match="no description"):
        client.models.new("spellapimodel", "uploads/spell-api-weights", description="best")
    with pytest.raises(NotFound):
        client.servers.get("no-such-server")

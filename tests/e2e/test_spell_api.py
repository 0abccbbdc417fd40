"""Spell's Python API end to end, written as a Spell user would: a training script with
``from spell.metrics import send_metric`` (text and numbers), and ``spell.client`` driving
runs and a grid search. The real CLI, the real server over HTTP, a real Ray head."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from spell.api.exceptions import WaitError
from spell.api.models import ValueSpec
from spell.client import SpellClient
from tests.helpers import Spell, wait_for

TRAIN = """\
from spell.metrics import send_metric

for epoch in range(3):
    send_metric("phase", f"epoch {epoch} of 3")
    send_metric("val loss", 1.0 / (epoch + 1))
send_metric("ignored", [1, 2])  # warns and is dropped: the training goes on
print("trained")
"""
# Writes an output, then logs and sends a falling loss until it is killed.
FOREVER = """\
import time
from spell.metrics import send_metric
open("out.txt", "w").write("kept")
for i in range(3000):
    print(f"step {i}", flush=True)
    send_metric("loss", 1.0 / (i + 1))
    time.sleep(0.1)
"""


def _python(script: str) -> str:
    return f"python -c {shlex.quote(script)}"


@pytest.fixture
def client(spell: Spell) -> SpellClient:
    return SpellClient(token=spell.token, base_url=spell.url)


def test_a_spell_training_script_sends_text_and_numbers(spell: Spell, project: Path,
                                                        client: SpellClient
                                                        ) -> None:
    (project / "train.py").write_text(TRAIN)
    done = spell("run", "python train.py", cwd=project)
    assert done.returncode == 0, done.stderr
    run_id = int(re.search(r"^run (\d+) started", done.stderr, re.M).group(1))  # type: ignore[union-attr]

    table = spell("metrics", str(run_id))
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line.strip()}
    assert "epoch 2 of 3" in rows["phase"] and "ignored" not in rows
    series = spell("metrics", str(run_id), "phase")
    assert [line.split(maxsplit=1)[1][:len("epoch 0 of 3")].strip()
            for line in series.stdout.splitlines()[2:]] == [f"epoch {i} of 3" for i in range(3)]

    run = client.runs.get(run_id)
    assert [(i, v) for _, i, v in run.metrics("phase")] == [
        (i, f"epoch {i} of 3") for i in range(3)]
    assert [v for _, _, v in run.metrics("val loss")] == [1.0, 0.5, 1.0 / 3]
    assert any("trained" in str(entry) for entry in run.logs())


def test_a_run_through_its_life_with_spell_client(client: SpellClient,
                                                  tmp_path: Path) -> None:
    runs = client.runs
    quick = runs.new(command='echo "$GREETING" > out.txt && echo said it',
                     envvars={"GREETING": "hello"}, labels=["spell-api"])
    quick.wait_status(runs.COMPLETE)
    quick.refresh()
    assert (quick.status, quick.user_exit_code, quick.already_existed) == ("complete", 0, False)
    assert [str(e) for e in quick.logs() if not e.status_event][-1:] == ["said it"]
    quick.cp("out.txt", tmp_path)
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    quick.add_label("checked")
    assert client.runs.get(quick.id).labels == ["checked", "spell-api"]
    quick.remove_label("checked")
    again = runs.new(command='echo "$GREETING" > out.txt && echo said it',
                     envvars={"GREETING": "hello"}, labels=["spell-api"], idempotent=True)
    assert again.already_existed and again.id == quick.id

    slow = runs.new(command=_python(FOREVER))
    slow.wait_status(runs.RUNNING)
    slow.wait_metric("loss", runs.LESS_THAN, 0.2)  # the fifth value or so
    follow = slow.logs(follow=True)
    first = next(follow)
    assert first.status_event and first.status == "running"
    assert str(next(follow)).startswith("step ")
    slow.kill()
    with pytest.raises(WaitError, match="ended killed"):
        slow.wait_status(runs.COMPLETE)
    assert slow.status == "killed"
    assert any(e.status_event and e.status == "killed" for e in follow)  # then it ends


def test_a_grid_search_through_spell_client(spell: Spell,
                                            client: SpellClient) -> None:
    search = client.hyper.new_grid_search(
        {"n": ValueSpec([1, 2])},
        command=_python("from spell.metrics import send_metric; send_metric('n', :n:)"))

    def ended() -> bool:
        search.refresh()
        return search.status not in ("running", "stopping") and len(search.runs) == 2 and all(
            r.status in client.runs.FINAL for r in search.runs)

    wait_for(ended, 300, interval=1, what=f"search {search.id} to end")
    assert search.status == "complete"
    assert sorted(v for r in search.runs for _, _, v in r.metrics("n")) == [1.0, 2.0]
    assert sorted(r.params["n"] for r in search.runs) == ["1", "2"]

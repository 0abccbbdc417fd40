"""The metric pieces that need no cluster: send_metric, stop conditions, the sparkline, and
the runner's forwarder tailing the file (its listeners hear metrics with no server at all)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from spellray import metrics
from spellray.cli.metrics import sparkline
from spellray.runner.metrics_forwarder import MetricsForwarder
from spellray.runner.server_api import ServerApi
from spellray.schemas.stop_conditions import StopCondition, normalize, parse
from tests.helpers import free_port, wait_for


@pytest.fixture
def metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(metrics.METRICS_FILE_ENV, str(path))
    monkeypatch.setattr(metrics, "_next_index", {})
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_send_metric_appends_json_lines_with_next_indexes(metrics_file: Path) -> None:
    metrics.send_metric("acc", 0.5)
    metrics.send_metric("acc", 0.6)
    metrics.send_metric("loss", 2)
    metrics.send_metric("acc", 0.7, index=10)
    metrics.send_metric("acc", 0.8)
    got = [(m["name"], m["value"], m["index"]) for m in _lines(metrics_file)]
    assert got == [("acc", 0.5, 0), ("acc", 0.6, 1), ("loss", 2.0, 0), ("acc", 0.7, 10),
                   ("acc", 0.8, 11)]
    assert all(isinstance(m["time"], float) for m in _lines(metrics_file))


def test_send_metric_is_thread_safe(metrics_file: Path) -> None:
    def send(name: str) -> None:
        for i in range(200):
            metrics.send_metric(name, i)

    threads = [threading.Thread(target=send, args=(f"m{t % 2}",)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = _lines(metrics_file)
    assert len(lines) == 1600
    for name in ("m0", "m1"):
        assert sorted(m["index"] for m in lines if m["name"] == name) == list(range(800))


@pytest.mark.parametrize(("name", "value", "message"), [
    ("", 1, "non-empty string"),
    (3, 1, "non-empty string"),
    ("a\nb", 1, "control character"),
    ("x" * 251, 1, "longer than 250"),
    ("ok", None, "is not a number"),
    ("ok", b"x", "is bytes"),
    ("ok", [1, 2], "is not a number"),
    ("ok", math.nan, "not a finite number"),
    ("ok", math.inf, "not a finite number"),
    ("ok", "x" * 10_001, "at most 10000 characters"),
])
def test_send_metric_warns_and_drops_what_it_cannot_record(metrics_file: Path, name: object,
                                                           value: object, message: str) -> None:
    with pytest.warns(metrics.MetricWarning, match=f"metric discarded: .*{message}"):
        metrics.send_metric(name, value)  # type: ignore[arg-type]
    assert not metrics_file.exists()


@pytest.mark.parametrize("index", [1.5, "3", 2**63, True])
def test_send_metric_ignores_a_bad_index_with_a_warning(metrics_file: Path,
                                                        index: object) -> None:
    with pytest.warns(metrics.MetricWarning, match="index ignored"):
        metrics.send_metric("acc", 1, index)  # type: ignore[arg-type]
    assert [m["index"] for m in _lines(metrics_file)] == [0]


def test_send_metric_values_as_spell_took_them(metrics_file: Path) -> None:
    numpy = pytest.importorskip("numpy")
    metrics.send_metric("flag", True)
    metrics.send_metric("n", numpy.int64(7))
    metrics.send_metric("f", numpy.float32(0.5))
    metrics.send_metric("b", numpy.bool_(False))
    metrics.send_metric("zero_d", numpy.array(2.5))  # what a 0-d tensor's .item() gives too
    metrics.send_metric("phase", "warm-up")
    metrics.send_metric("phase", "1.5")  # a str stays text, even when it reads as a number
    got = [(m["name"], m["value"]) for m in _lines(metrics_file)]
    assert got == [("flag", 1.0), ("n", 7.0), ("f", 0.5), ("b", 0.0), ("zero_d", 2.5),
                   ("phase", "warm-up"), ("phase", "1.5")]
    with pytest.warns(metrics.MetricWarning, match="more than one value"):
        metrics.send_metric("vector", numpy.array([1.0, 2.0]))


def test_send_metric_accepts_names_mlflow_refuses(metrics_file: Path) -> None:
    names = ["train/loss", "val acc", "a:b", "précision", "acc (val)", "50%", "/abs", "a//b"]
    for name in names:
        metrics.send_metric(name, 1)
    assert [m["name"] for m in _lines(metrics_file)] == names
    assert [metrics.mlflow_accepts(n) for n in names] == [True] * 4 + [False] * 4


def test_send_metric_outside_a_run_is_a_no_op(tmp_path: Path) -> None:
    probe = ("import sys, warnings\nfrom spellray.metrics import send_metric\n"
             "warnings.simplefilter('error')\n"
             "send_metric('acc', 0.5)\n"
             "send_metric('acc', float('nan'))  # not even checked: nothing records it\n"
             "send_metric('phase', 'text')\n"
             "print('LOADED', [m for m in ('mlflow', 'httpx', 'ray', 'pydantic') "
             "if m in sys.modules])\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout  # nothing heavy imported
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("accuracy >= 0.9", StopCondition("accuracy", ">=", 0.9, 0)),
    ("loss<0.1:5", StopCondition("loss", "<", 0.1, 5)),
    ("  val/loss <= 1e-3 : 10 ", StopCondition("val/loss", "<=", 0.001, 10)),
    ("a:b > 3:2", StopCondition("a:b", ">", 3.0, 2)),
    ("epoch == 3", StopCondition("epoch", "==", 3.0, 0)),
    ("acc > -1", StopCondition("acc", ">", -1.0, 0)),
])
def test_stop_conditions_parse(text: str, expected: StopCondition) -> None:
    assert parse(text) == expected
    assert parse(str(expected)) == expected  # the normal form reads back the same


def test_stop_condition_normal_form_keeps_the_value_exact() -> None:
    assert normalize(["acc>=0.1234567", "loss < 3.0:0", "x==2:4"]) == [
        "acc >= 0.1234567", "loss < 3", "x == 2:4"]


@pytest.mark.parametrize(("text", "message"), [
    ("accuracy", "is malformed"), ("accuracy >> 0.9", "is malformed"),
    ("accuracy = 0.9", "is malformed"), ("accuracy => 0.9", "is malformed"),
    (">= 0.9", "is malformed"), ("", "is malformed"),
    ("accuracy >= high", "is not a number"), ("accuracy >= nan", "finite number"),
    ("accuracy >= 0.9:", "MIN_INDEX '' must be"), ("accuracy >= 0.9:1.5", "MIN_INDEX '1.5'"),
    ("accuracy >= 0.9:1:2", "is malformed"), ("bad$name > 1", "may only contain"),
])
def test_malformed_stop_conditions(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_stop_condition_is_met_at_min_index_or_later() -> None:
    condition = parse("accuracy >= 0.9:3")
    assert not condition.met("accuracy", 0.95, 2)
    assert condition.met("accuracy", 0.9, 3)
    assert not condition.met("accuracy", 0.89, 4)
    assert not condition.met("loss", 0.95, 4)


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([8, 1]) == "█▁"
    assert sparkline([3, 3, 3]) == "▄▄▄"
    long = sparkline(list(range(1000)), width=40)
    assert len(long) == 40 and long[0] == "▁" and long[-1] == "█"
    assert list(long) == sorted(long)


def test_forwarder_tells_listeners_even_with_no_server(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    heard: list[dict] = []
    api = ServerApi(f"http://127.0.0.1:{free_port()}", "token", 1)  # nothing listens there
    forwarder = MetricsForwarder(path, api, [heard.append, lambda m: 1 / 0])
    with path.open("a", buffering=1) as f:
        f.write(json.dumps({"name": "a", "value": 1, "index": 0, "time": 1.0}) + "\n")
        f.write("not a metric\n")
        f.write(json.dumps({"name": "t", "value": "text", "index": 0, "time": 1.5}) + "\n")
        f.write(json.dumps({"name": "a", "value": 2, "index": 1, "time": 2.0}))  # no \n yet
        wait_for(lambda: len(heard) == 1, what="the first metric")
        f.write("\n")
    wait_for(lambda: len(heard) == 2, what="the second metric")
    # The server never answers: give up soon, and hand back what it never took.
    undelivered = forwarder.close(timeout=0.5)
    assert [(m["name"], m["value"]) for m in undelivered] == [("a", 1.0), ("t", "text"),
                                                             ("a", 2.0)]
    assert heard == [{"name": "a", "value": 1.0, "index": 0, "time": 1.0},
                     {"name": "a", "value": 2.0, "index": 1, "time": 2.0}]
    assert forwarder.count == 3  # the text metric is forwarded, not heard: it is no score

"""Load: 20 clients poll the run list and logs while 50 runs execute on a real Ray head.

Issue 20's load proof. The clients (spellray/testing/load.py) are threads, each with its
own SDK client, asking the routes `spell ps` and `spell logs N` ask, every 0.5 s (a person
watching `spell ps` asks every second or two); meanwhile the test submits 50 short runs
that print lines, on the session's Ray head (8 CPUs, so 8 run at once), and calls the real
CLI (`spell ps`, `spell logs N`) a few times. Then: no request failed, every run completed
with its whole log. It prints ``requests, failed, p50, p99, max`` last, against the
issue's target (p99 < 1 s on this machine).

The time is printed, not asserted: the suite's rule is no wall-clock limits in tests, and
rightly here, since the machine is shared (2 cores, other test runs and Ray heads on it),
so an answer time measures the neighbours as much as the server. benchmarks/server_load.py
measures it as a ratio against the same polling of an idle server.

``SPELLRAY_CAMPAIGN=short`` submits 15 runs; by default, and in .ci/run, 50.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from spellray.client import Client
from spellray.testing.load import Pollers, per_route, percentile, summary
from tests.conftest import make_spell
from tests.helpers import Spell, wait_for

pytestmark = pytest.mark.campaign

SHORT = os.environ.get("SPELLRAY_CAMPAIGN", "full") == "short"
RUNS = 15 if SHORT else 50
CLIENTS = 20
POLL_INTERVAL = 0.5
LINES = 10
TARGET_P99 = 1.0
CLI_CALLS = 3


@pytest.fixture
def load_spell(tmp_path: Path, ray_head: str) -> Iterator[Spell]:
    """A server of its own on the session's Ray head (8 CPUs, idle between tests): a head
    started here as well would add a minute of start-up on a busy machine, and Ray gives a
    head's node 30 s to register, which a loaded 2-core machine can miss."""
    spell = make_spell(tmp_path, ray_head)
    try:
        started = spell("server", "start")
        assert started.returncode == 0, started.stderr
        yield spell
    finally:
        spell("server", "stop")


def command(marker: str) -> str:
    """A run of about 2 s printing LINES lines, each with its run's marker."""
    return (f"python -c \"import time\nfor i in range({LINES}):\n"
            f"    print('{marker} line', i, flush=True)\n    time.sleep(0.2)\"")


@pytest.mark.timeout(1800)  # the campaign's own size, not a limit on the machine's speed
def test_polling_clients_while_runs_execute(load_spell: Spell) -> None:
    spell = load_spell
    client = Client(spell.url, spell.token)
    pollers = Pollers(spell.url, spell.token, CLIENTS, POLL_INTERVAL).start()
    try:
        tag = uuid.uuid4().hex[:8]
        markers = {client.runs.new(command(f"load-{tag}-{n}"), code_dir=None).id:
                   f"load-{tag}-{n}" for n in range(RUNS)}
        cli_seconds = real_cli_calls(spell, sorted(markers))

        def all_ended() -> bool:
            runs = client.runs.list(limit=0).runs
            return all(run.status.is_terminal for run in runs if run.id in markers)

        wait_for(all_ended, timeout=1200, interval=1, what=f"the {RUNS} runs to end")
    finally:
        timings = pollers.stop()
    for run_id, marker in markers.items():
        chunk = client.runs.logs(run_id)
        assert chunk.status.value == "complete" and chunk.exit_code == 0, \
            f"run {run_id}: {chunk.status.value} ({chunk.status_reason}): {spell.diagnose(run_id)}"
        assert all(f"{marker} line {i}" in chunk.text for i in range(LINES)), \
            f"run {run_id}'s log is not whole: {chunk.text!r}"
    print(f"{RUNS} runs complete; {CLIENTS} clients polling every {POLL_INTERVAL} s; "
          f"real CLI calls (a new process each, Python's start included): "
          f"p50 {sorted(cli_seconds)[len(cli_seconds) // 2]:.2f} s, max {max(cli_seconds):.2f} s")
    print(per_route(timings))
    p99 = percentile(timings.all(), 0.99) if timings.requests else float("nan")
    print(f"{summary(timings)} (target p99 < {TARGET_P99:.0f} s: "
          f"{'met' if p99 < TARGET_P99 else 'missed'})")
    assert timings.requests > CLIENTS, "the pollers asked (almost) nothing"
    assert not timings.failures, "\n".join(timings.failures[:20])


def real_cli_calls(spell: Spell, run_ids: list[int]) -> list[float]:
    """`spell ps` and `spell logs N` through the real CLI while the runs execute: each
    exits 0 and shows what it should. Returns their wall times (process start included)."""
    seconds = []
    for n in range(CLI_CALLS):
        began = time.perf_counter()
        listed = spell("ps")
        seconds.append(time.perf_counter() - began)
        assert listed.returncode == 0, listed.stderr
        assert str(run_ids[-1]) in listed.stdout.split(), listed.stdout
        run_id = run_ids[n * len(run_ids) // CLI_CALLS]
        spell.wait_status(run_id, "running", "complete", timeout=600)
        began = time.perf_counter()
        shown = spell("logs", str(run_id))
        seconds.append(time.perf_counter() - began)
        # Exit 0, running or complete; the whole log once complete.
        assert shown.returncode == 0, shown.stderr
        if spell.run_info(run_id)["status"] == "complete":
            assert f"line {LINES - 1}" in spell("logs", str(run_id)).stdout
    return seconds

"""Chaos: the spellray server SIGKILLed and restarted while 4 clients submit runs.

Issue 20's first proof. Runs of every kind (complete with an output and a metric, exit 3,
stopped by `spell stop`) go in from 4 SDK clients on threads; meanwhile a killer thread
SIGKILLs the server at random moments and starts it again with `spell server start`. Then
every run is checked: its status, exit code, log, outputs and metric; run numbers 1..N dense
and unique; nothing left active. The test prints ``runs, lost, wrong`` last.

``SPELLRAY_CAMPAIGN=short`` (the quick loop) does 24 runs and 1 kill; by default, and in
.ci/run, 100 runs and 3 kills. The seed is printed, and ``SPELLRAY_CHAOS_SEED`` replays it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from spellray.client import Client
from spellray.errors import Conflict, NotFound, ServerUnavailable
from spellray.schemas import Run
from tests.conftest import make_spell, start_ray_head, stop_ray_head
from tests.helpers import Spell, free_port, wait_for

pytestmark = pytest.mark.campaign

SHORT = os.environ.get("SPELLRAY_CAMPAIGN", "full") == "short"
RUNS, KILLS = (24, 1) if SHORT else (100, 3)
CLIENTS = 4
KINDS = ("complete", "failing", "stopped")
# How long a complete run's metric may take to reach MLflow after the run ended.
METRIC_PATIENCE = 240
T = TypeVar("T")


@dataclass
class Planned:
    """One run the test means to have: its kind and the marker only it prints."""

    index: int
    kind: str
    marker: str
    run: Run | None = None

    @property
    def command(self) -> str:
        say = f"print('{self.marker}', flush=True)"
        if self.kind == "complete":
            return ("python -c \"from spellray.metrics import send_metric\n" + say + "\n"
                    f"open('out.txt', 'w').write('{self.marker}')\n"
                    f"send_metric('chaos', {self.index})\"")
        if self.kind == "failing":
            return f"python -c \"import sys\n{say}\nsys.exit(3)\""
        # Held until `spell stop` (at most 10 minutes, so a lost stop cannot hang CI).
        return f"python -c \"import time\n{say}\nfor _ in range(3000): time.sleep(0.2)\""


def retrying(call: Callable[[], T], server_up: threading.Event) -> T:
    """``call`` until the server answers it. A real client does this: a server restart is
    seconds of refused connections, and the SDK says so with ServerUnavailable rather than
    guessing whether to wait; the caller, who knows the call is safe to repeat, retries."""
    while True:
        try:
            return call()
        except ServerUnavailable:
            server_up.wait(timeout=5)


def submit(client: Client, planned: Planned, server_up: threading.Event) -> Run:
    """Start ``planned`` once, however often the server dies under the submission.

    The marker is the run's label and makes its command unique, so ``idempotent=True``
    returns the first submission's run when the kill came after its commit but before the
    answer. That run may have failed or been stopped (not reusable) before the retry reaches
    the restarted server, so the client first looks its label up: an idempotency key."""
    first = True
    while True:
        if not first:
            found = retrying(lambda: client.runs.list(label=planned.marker), server_up).runs
            if found:
                return found[-1]
        first = False
        try:
            return client.runs.new(planned.command, code_dir=None, idempotent=True,
                                   labels=[planned.marker])
        except (ServerUnavailable, Conflict):
            server_up.wait(timeout=5)


@pytest.fixture
def chaos_spell(tmp_path: Path) -> Iterator[Spell]:
    head, address = start_ray_head(tmp_path, num_cpus=8)
    spell = make_spell(tmp_path, address)
    # A fixed port: clients keep one URL across restarts, as with a real deployment.
    spell.extra_env["SPELLRAY_SERVER_PORT"] = str(free_port())
    try:
        started = spell("server", "start")
        assert started.returncode == 0, started.stderr
        yield spell
    finally:
        spell("server", "stop")
        stop_ray_head(head)


def kill_and_restart(spell: Spell, server_up: threading.Event, rng: random.Random) -> None:
    pid = spell.state["server_pid"]
    server_up.clear()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode,
             what="the killed server to be gone")
    # Down for a random while (runners report, runs end) before it comes back.
    threading.Event().wait(rng.uniform(0.5, 4))
    started = spell("server", "start")
    assert started.returncode == 0, started.stderr
    server_up.set()


@pytest.mark.timeout(1800)  # the campaign's own size, not a limit on the machine's speed
def test_runs_end_right_while_the_server_is_killed(chaos_spell: Spell) -> None:
    spell = chaos_spell
    seed = int(os.environ.get("SPELLRAY_CHAOS_SEED") or random.randrange(1 << 30))
    print(f"chaos seed {seed} (SPELLRAY_CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]
    plan = [Planned(i, KINDS[i % len(KINDS)], f"chaos-{tag}-{i}") for i in range(RUNS)]
    rng.shuffle(plan)
    # The kills come as given numbers of runs have been submitted; the last may come after
    # every submission, while runs are still ending.
    kill_after = sorted(rng.sample(range(RUNS // 10, RUNS + 1), KILLS))
    server_up = threading.Event()
    server_up.set()
    submitted = threading.Semaphore(0)
    errors: list[BaseException] = []

    def client_thread(share: list[Planned]) -> None:
        client = Client(spell.url, spell.token)
        try:
            for planned in share:
                planned.run = submit(client, planned, server_up)
                submitted.release()
        except BaseException as exc:  # the main thread fails the test with it
            errors.append(exc)
            for _ in share:
                submitted.release()

    def killer() -> None:
        try:
            done = 0
            for target in kill_after:
                while done < target:
                    submitted.acquire()
                    done += 1
                kill_and_restart(spell, server_up, rng)
        except BaseException as exc:
            errors.append(exc)
            server_up.set()

    threads = [threading.Thread(target=client_thread, args=(plan[n::CLIENTS],))
               for n in range(CLIENTS)]
    threads.append(threading.Thread(target=killer))
    for thread in threads:
        thread.start()
    # Stop the held runs as they start, through the real CLI, retried while the server is
    # down (the CLI fails then, with a one-line error).
    client = Client(spell.url, spell.token)
    for thread in threads[:CLIENTS]:
        thread.join()
    assert not errors, errors
    stop_held_runs(spell, client, plan, server_up)
    threads[-1].join()
    assert not errors, errors
    server_up.set()
    check(spell, client, plan, server_up)


def stop_held_runs(spell: Spell, client: Client, plan: list[Planned],
                   server_up: threading.Event) -> None:
    """`spell stop` each held run once it has printed its marker, whichever first (they hold
    CPUs, so later ones wait for earlier ones to be stopped); retried while the server is
    down. `running` means the command was started, not that it has printed yet: a stop in
    between rightly leaves an empty log, which the check would call wrong."""
    held = {p.run.id: p.marker for p in plan if p.kind == "stopped" and p.run is not None}

    def has_printed(run_id: int) -> bool:
        # The log's start, once: following it would wait for the run's end.
        start = retrying(lambda: client.runs.logs(run_id, 0, 0), server_up)
        return held[run_id] in start.text

    def stop_the_running() -> bool:
        for run_id in sorted(held):
            run = retrying(lambda rid=run_id: client.runs.get(rid), server_up)
            # Ended some other way (the check says how that is wrong), or stopped now.
            if run.status.is_terminal or (run.status.value == "running" and has_printed(run_id)
                                          and spell("stop", str(run_id)).returncode == 0):
                del held[run_id]
        return not held

    try:
        wait_for(stop_the_running, timeout=600, what="the held runs to print their markers")
    except AssertionError as exc:
        left = {run_id: client.runs.get(run_id) for run_id in held}
        raise AssertionError(f"{exc}: " + "; ".join(
            f"run {run_id} {run.status.value} ({run.status_reason}; {run.waiting}; Ray job "
            f"{run.ray_submission_id}), log "
            f"{client.runs.logs(run_id, 0, 0).text[-300:]!r}"
            for run_id, run in left.items())) from None


def check(spell: Spell, client: Client, plan: list[Planned],
          server_up: threading.Event) -> None:
    """Every planned run once, ended right; the numbers dense. Prints runs, lost, wrong."""
    everything = client.runs.list(limit=10 * RUNS).runs
    # Nothing stuck: every run ends (the reconciler settles any the kills left behind).
    for run in everything:
        try:
            spell.wait_status(run.id, "complete", "failed", "stopped", "killed", timeout=300)
        except AssertionError as exc:
            raise AssertionError(f"run {run.id} stuck: {exc}") from None
    numbers = sorted(run.id for run in everything)
    assert numbers == list(range(1, len(numbers) + 1)), f"numbers not dense: {numbers}"
    by_marker: dict[str, list[int]] = {}
    for run in everything:
        for label in run.labels:
            by_marker.setdefault(label, []).append(run.id)
    lost, wrong, problems = 0, 0, []
    for planned in sorted(plan, key=lambda p: p.index):
        ids = by_marker.get(planned.marker, [])
        if not ids:
            lost += 1
            problems.append(f"{planned.marker}: lost")
            continue
        if len(ids) > 1:
            wrong += 1
            problems.append(f"{planned.marker}: duplicated as runs {ids}")
            continue
        why = what_is_wrong(client, planned, ids[0])
        if why:
            wrong += 1
            problems.append(f"{planned.marker} (run {ids[0]}, {planned.kind}): {why}")
    extra = [run.id for run in everything if not any(lb in by_marker for lb in run.labels)]
    print(f"runs {len(plan)}, lost {lost}, wrong {wrong}")
    assert not problems and not extra, "\n".join([*problems, f"unplanned runs {extra}"])


def what_is_wrong(client: Client, planned: Planned, run_id: int) -> str | None:
    run = client.runs.get(run_id)
    expected: dict[str, tuple[str, Any]] = {"complete": ("complete", 0), "failing": ("failed", 3),
                                            "stopped": ("stopped", None)}
    status, exit_code = expected[planned.kind]
    if run.status.value != status:
        return f"status {run.status.value} ({run.status_reason}), expected {status}"
    if exit_code is not None and run.exit_code != exit_code:
        return f"exit code {run.exit_code}, expected {exit_code}"
    log = "".join(chunk.text for chunk in client.runs.follow(run_id, wait=0))
    if planned.marker not in log:
        return f"its log lacks its marker: {log[-300:]!r}"
    if planned.kind == "complete":
        outputs = {item.path for item in client.runs.outputs(run_id)}
        if "out.txt" not in outputs:
            return f"no out.txt in its outputs {sorted(outputs)}"
        # A metric the runner could not deliver (the server was down past its drain) is
        # logged when the server learns the run ended; if the server died right then, its
        # reconciler does it a minute or so later (services/metrics.py TRACKING_RETRY).
        def metric() -> list[Any] | None:
            try:
                return [point.value for point in client.metrics.get(run_id, "chaos").values]
            except NotFound:
                return None

        try:
            values = wait_for(metric, timeout=METRIC_PATIENCE, interval=1, what="its metric")
        except AssertionError:
            return "its metric chaos is not in MLflow"
        if values != [planned.index]:
            return f"metric chaos is {values}, expected [{planned.index}]"
    return None

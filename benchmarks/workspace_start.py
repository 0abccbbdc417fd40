"""A workspace's start and its kernel round trip against JupyterLab run directly.

Usage: python benchmarks/workspace_start.py [--rounds N] [--requests N]

Starts a private Ray head and spellray server, then measures two figures:

1. Start: `spell jupyter NAME --no-browser` (the CLI as a subprocess, a new name each round,
   so each is a real start) until it prints its link, then that link opened (the login
   redirects to /workspaces/NAME/lab, fetched with the cookie), against `python -m
   jupyterlab` started directly on this machine until its /lab answers 200 with the token.
   Stopping either is outside the timed part. Rounds alternate which side goes first. Each
   spell round is also split into phases, measured, not guessed: the server's DB (run
   events; Jupyter's address, polled here), Ray's job info, and the runner's files and
   processes (runner_marks); beside them, a raw Ray job's own start, for comparison.
2. Kernel round trip: one kernel in one workspace, an `execute_request` of `21 * 2` over
   the kernel websocket until its `execute_reply`, through the server's proxy (session
   cookie) against directly to the same Jupyter (its address and token read from the
   server's `workspaces` table). The same Jupyter and the same kernel on both sides, so the
   proxy is the only difference; a second, direct JupyterLab would add its own kernel's
   noise. Proxied and direct alternate in blocks, one websocket open at a time; both again
   with quick ACKs on the benchmark's socket (see QUICKACK).

Both ratios are printed, the start ratio (the headline, target <= 1.5x) last; the kernel
ratio's target is <= 1.2x.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil
import websockets
from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down  # beside this
from ray.job_submission import JobSubmissionClient

from spellray.client import Client

START_TIMEOUT = 300.0
POLL = 0.02  # the benchmark's own polls: fine enough not to blur the figures
WARMUP_ROUNDS = 1
WARMUP_REQUESTS = 20
BLOCKS = 10
# Jupyter (tornado) writes a kernel's messages to its websocket with Nagle's algorithm on:
# the second small write waits for the ACK of the first, which the receiving end delays
# (~40 ms on Linux). A browser delays its ACKs so; a receiver that ACKs at once does not
# wait. The round trips are timed both ways: as a browser sees them (the kernel ratio),
# and with quick ACKs on the benchmark's own socket, which shows what each hop costs.
QUICKACK = getattr(socket, "TCP_QUICKACK", None)
# The phases of a spell start, each from the previous mark to its own (see Marks).
PHASES = {
    "requested": "CLI start-up, code upload, run made",
    "ray_submitted": "run queue hands it to Ray",
    "runner": "Ray starts the job: the runner's process",
    "code": "runner: run.json, code, mounts",
    "running": "runner: MLflow run, reports",
    "jupyter": "runner starts Jupyter's process",
    "listening": "Jupyter starts, listens",
    "address": "runner sees it answer, reports",
    "cli_done": "CLI sees it running, login link, exit",
    "lab": "login link + /lab through the proxy",
}


def run_checked(args: list[str], what: str, env: dict[str, str], cwd: Path | None = None
                ) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT,
                            env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def wait(predicate: Callable[[], object], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL)


def epoch(text: str) -> float:
    """A datetime the server stored in SQLite (UTC, no zone) as a Unix time."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def summary(name: str, times: list[float]) -> str:
    return (f"{name:<52} median {statistics.median(times):7.3f} s   "
            f"min {min(times):7.3f} s   max {max(times):7.3f} s   (n={len(times)})")


# -- the spell side of a start -------------------------------------------------------------
class AddressWatch:
    """When the runner's report of Jupyter's address lands in the DB: the one mark the
    server keeps no time for, so it is polled here (a read-only SQLite query)."""

    def __init__(self, db_file: Path, name: str) -> None:
        self.db_file, self.name = db_file, name
        self.at: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        db = sqlite3.connect(f"file:{self.db_file}?mode=ro", uri=True, timeout=5)
        try:
            while not self._done.is_set():
                row = db.execute("SELECT address FROM workspaces WHERE name = ?",
                                 (self.name,)).fetchone()
                if row and row[0]:
                    self.at = time.time()
                    return
                time.sleep(POLL)
        finally:
            db.close()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def spell_start(name: str, env: dict[str, str], project: Path, db_file: Path,
                ray: JobSubmissionClient) -> tuple[float, dict[str, float]]:
    """Seconds from `spell jupyter NAME` to /lab answering through the proxy, and the
    phases of that time."""
    watch = AddressWatch(db_file, name)
    began = time.time()
    start = time.perf_counter()
    try:
        out = run_checked([*SPELL_CLI, "jupyter", name, "--no-browser"], "spell jupyter",
                          env=env, cwd=project)
        cli_done = time.time()
        link = out.strip().splitlines()[-1]
        with httpx.Client(timeout=60, trust_env=False) as browser:
            page = browser.get(link, follow_redirects=True)
        elapsed = time.perf_counter() - start
    finally:
        watch.stop()
    if page.status_code != 200 or not page.url.path.endswith(f"/workspaces/{name}/lab"):
        raise RuntimeError(f"the link answered {page.status_code} at {page.url}")
    marks: dict[str, float | None] = {
        "began": began, **server_marks(db_file, name, ray), "address": watch.at,
        "cli_done": cli_done, "lab": began + elapsed}
    split = {}
    for before, phase in itertools.pairwise(["began", *PHASES]):
        if (start_at := marks.get(before)) is not None and \
                (end_at := marks.get(phase)) is not None:
            split[phase] = end_at - start_at  # a mark not found: it and the next are left out
    return elapsed, split


def server_marks(db_file: Path, name: str, ray: JobSubmissionClient
                 ) -> dict[str, float | None]:
    """When the server made the run, handed it to Ray and heard `running`; and the
    runner's own marks (runner_marks)."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5) as db:
        run_id, submission = db.execute(
            "SELECT runs.id, runs.ray_submission_id FROM workspaces JOIN runs "
            "ON runs.id = workspaces.run_id WHERE workspaces.name = ?", (name,)).fetchone()
        events = {status: epoch(at) for status, at in db.execute(
            "SELECT status, at FROM run_events WHERE run_id = ? ORDER BY id", (run_id,))}
    # Ray's start_time is when its job manager took the submission (milliseconds).
    submitted = (ray.get_job_info(submission).start_time or 0) / 1000
    return {"requested": events["requested"], "ray_submitted": submitted,
            "running": events["running"], **runner_marks(run_id)}


def runner_marks(run_id: int) -> dict[str, float | None]:
    """Read off the files of the runner's folder (this is a one-machine cluster, so it is
    in this machine's temp folder; runner/main.py, workdir.py, jupyter.py), while it runs:
    the metrics file is touched once code and mounts are in place, before the wait for
    the MLflow run; Jupyter writes its server file once it listens; the processes of
    Jupyter and the runner say when they were made. A mark not found is left out."""
    # Other servers' runs of the same number may have left folders: ours is a workspace's
    # (Jupyter's runtime folder beside it) and the newest.
    found = [p for p in Path(tempfile.gettempdir()).glob(f"spellray-run-{run_id}-*.jupyter")
             if p.is_dir()]
    if not found:
        return {}
    folder = max(found, key=lambda p: p.stat().st_mtime).with_suffix("")

    metrics = folder.with_name(f"{folder.name}.metrics.jsonl")
    marks: dict[str, float | None] = {
        "code": metrics.stat().st_mtime if metrics.exists() else None}
    for server_file in folder.with_name(f"{folder.name}.jupyter").glob("jpserver-*.json"):
        marks["listening"] = server_file.stat().st_mtime
        # Its name holds Jupyter's pid; the runner (Ray's job entrypoint) is its parent.
        with contextlib.suppress(psutil.Error, StopIteration):
            jupyter = psutil.Process(int(server_file.stem.removeprefix("jpserver-")))
            runner = next(p for p in jupyter.parents() if "spellray.runner" in p.cmdline())
            skew = create_time_skew()
            marks["jupyter"] = jupyter.create_time() - skew
            marks["runner"] = runner.create_time() - skew
    return marks


@functools.cache
def create_time_skew() -> float:
    """How far psutil's process start times are from time.time(): they count from the
    boot time, which Linux gives in whole seconds (up to 1 s off, the same for every
    process). Measured on a process started here."""
    before = time.time()
    probe = subprocess.Popen(["sleep", "1"])
    after = time.time()
    try:
        return psutil.Process(probe.pid).create_time() - (before + after) / 2
    finally:
        probe.kill()
        probe.wait()


def ray_jobs_ready(ray: JobSubmissionClient) -> None:
    """Wait until the new head runs a job: its job agent may refuse the first submissions
    for a few seconds (a 500, "Server disconnected"), which would fail the first start."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            job = ray.submit_job(entrypoint="true")
            break
        except (RuntimeError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    wait(lambda: ray.get_job_status(job).is_terminal(), "a first Ray job")


def ray_job_start(ray: JobSubmissionClient) -> float:
    """Seconds from a raw Ray job's submission to its entrypoint's Python running: what
    Ray itself takes before any runner can start, on this head, for comparison."""
    job = ray.submit_job(entrypoint=f"{sys.executable} -c 'import time; print(time.time())'",
                         entrypoint_num_cpus=1)
    wait(lambda: ray.get_job_status(job).is_terminal(), "a raw Ray job")
    return float(ray.get_job_logs(job).split()[-1]) - ray.get_job_info(job).start_time / 1000


def stop_workspace(name: str, env: dict[str, str], client: Client) -> None:
    run_checked([*SPELL_CLI, "workspaces", "stop", name], "spell workspaces stop", env=env)
    wait(lambda: client.workspaces.get(name).status.value in ("stopped", "failed"),
         f"workspace {name} to stop")


# -- the direct side of a start ------------------------------------------------------------
def direct_start(root: Path) -> tuple[float, float]:
    """Seconds from `python -m jupyterlab` to /lab answering 200 with the token, and to its
    listening (its server file written); the server is stopped after, untimed."""
    runtime = Path(tempfile.mkdtemp(prefix="runtime-", dir=root))
    token = secrets.token_urlsafe(32)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0",
         "--ServerApp.port_retries=0", f"--ServerApp.token={token}", "--allow-root",
         f"--ServerApp.root_dir={root / 'project'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port: list[int] = []

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited {process.returncode}")
            for info in runtime.glob("jpserver-*.json"):
                try:
                    port.append(int(json.loads(info.read_text())["port"]))
                    return True
                except (OSError, ValueError, KeyError):
                    pass  # being written
            return False

        wait(listening, "jupyter lab to listen")
        listened = time.perf_counter() - start
        with httpx.Client(timeout=60, trust_env=False) as browser:
            url = f"http://127.0.0.1:{port[0]}/lab?token={token}"
            wait(lambda: browser.get(url).status_code == 200, "jupyter lab's /lab")
        return time.perf_counter() - start, listened
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- kernel round trips --------------------------------------------------------------------
def execute_request(session: str) -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request",
                       "username": "bench", "session": session, "version": "5.3",
                       "date": datetime.now(timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": "21 * 2", "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}


async def round_trips(url: str, headers: dict[str, str], count: int,
                      quickack: bool = False) -> list[float]:
    """``count`` execute_request -> execute_reply round trips on one kernel websocket.
    ``quickack``: ACK every segment at once on this end (see QUICKACK)."""
    session = uuid.uuid4().hex
    times = []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        sock = ws.transport.get_extra_info("socket")
        for _ in range(count):
            request = execute_request(session)
            msg_id = request["header"]["msg_id"]
            start = time.perf_counter()
            await ws.send(json.dumps(request))
            while True:  # iopub messages (busy, input, result, idle) pass by
                if quickack:  # Linux clears it after use
                    sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
                message = json.loads(await ws.recv())
                if message.get("msg_type") == "execute_reply" and \
                        message["parent_header"].get("msg_id") == msg_id:
                    break
            times.append(time.perf_counter() - start)
            if message["content"].get("status") != "ok":
                raise RuntimeError(f"execute_reply: {message['content']}")
    return times


def kernel_round_trips(name: str, server: str, db_file: Path, link: str,
                       requests: int) -> dict[str, list[float]]:
    with httpx.Client(timeout=60, trust_env=False) as browser:
        browser.get(link, follow_redirects=True).raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        kernel = browser.post(f"{server}/workspaces/{name}/api/kernels", json={})
        kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5) as db:
        address, token = db.execute("SELECT address, jupyter_token FROM workspaces "
                                    "WHERE name = ?", (name,)).fetchone()
    channels = f"/workspaces/{name}/api/kernels/{kernel_id}/channels"
    sides = {"proxied": (server.replace("http://", "ws://") + channels, {"Cookie": cookie}),
             "direct": (address.replace("http://", "ws://") + channels,
                        {"Authorization": f"token {token}"})}
    runs = {side: (url, headers, False) for side, (url, headers) in sides.items()}
    if QUICKACK:
        runs |= {f"{side}, quick ACKs": (url, headers, True)
                 for side, (url, headers) in sides.items()}
    for url, headers, quick in runs.values():  # warm: the kernel's first answers are slow
        asyncio.run(round_trips(url, headers, WARMUP_REQUESTS, quick))
    times: dict[str, list[float]] = {side: [] for side in runs}
    per_block = max(1, requests // BLOCKS)
    for block in range(BLOCKS):
        order = list(runs) if block % 2 == 0 else list(reversed(runs))
        for side in order:
            times[side] += asyncio.run(round_trips(*runs[side][:2], per_block, runs[side][2]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured starts per side")
    parser.add_argument("--requests", type=int, default=200,
                        help="kernel round trips per side")
    args = parser.parse_args()

    workdir, project, env = bench_workdir()
    head: int | None = None
    succeeded = False
    began = time.perf_counter()
    try:
        head, address = start_ray_head(workdir, num_cpus=4)
        env["SPELLRAY_RAY_ADDRESS"] = address
        print(f"Ray head at {address} (workdir {workdir})", flush=True)
        ray = JobSubmissionClient(address)
        ray_jobs_ready(ray)
        run_checked([*SPELL_CLI, "server", "start"], "spell server start", env=env)
        home = Path(env["SPELLRAY_HOME"])
        server = f"http://127.0.0.1:{json.loads((home / 'server.json').read_text())['port']}"
        client = Client(server, (home / "token").read_text().strip())
        db_file = home / "spellray.db"

        starts: dict[str, list[float]] = {"spell": [], "direct": []}
        listened: list[float] = []
        raw_ray: list[float] = []
        phases: dict[str, list[float]] = {phase: [] for phase in PHASES}
        for i in range(WARMUP_ROUNDS + args.rounds):
            measured = i >= WARMUP_ROUNDS
            label = f"round {i - WARMUP_ROUNDS + 1}" if measured else f"warm-up {i + 1}"
            name = f"bench-{i}"

            def spell(name: str = name, measured: bool = measured) -> float:
                elapsed, split = spell_start(name, env, project, db_file, ray)
                stop_workspace(name, env, client)
                if measured:
                    for phase, seconds in split.items():
                        phases[phase].append(seconds)
                return elapsed

            def direct(measured: bool = measured) -> float:
                elapsed, listen = direct_start(workdir)
                if measured:
                    listened.append(listen)
                return elapsed

            sides = {"spell": spell, "direct": direct}
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            took = {side: sides[side]() for side in order}
            if measured:
                for side, seconds in took.items():
                    starts[side].append(seconds)
                raw_ray.append(ray_job_start(ray))
            print(f"{label:>10}: spell jupyter {took['spell']:.2f} s | "
                  f"jupyter lab {took['direct']:.2f} s", flush=True)

        name = "bench-kernel"
        run_checked([*SPELL_CLI, "jupyter", name, "--no-browser"], "spell jupyter", env=env,
                    cwd=project)
        kernels = kernel_round_trips(name, server, db_file, client.workspaces.login_url(name),
                                     args.requests)
        stop_workspace(name, env, client)

        print("\nwhere a spell jupyter start's time goes (medians; each from the one before):")
        for phase, what in PHASES.items():
            if phases[phase]:
                print(summary(f"  {phase} ({what})", phases[phase]))
        print("compare:")
        print(summary("  raw Ray job: submitted -> its Python runs", raw_ray))
        print(summary("  jupyter lab direct: listening", listened))
        print()
        print(summary("start: spell jupyter + /lab", starts["spell"]))
        print(summary("start: jupyter lab direct, /lab", starts["direct"]))
        kernel_ms = {side: statistics.median(t) * 1000 for side, t in kernels.items()}
        for side, ms in kernel_ms.items():
            print(f"kernel round trip, {side:<22} median {ms:7.2f} ms "
                  f"(n={len(kernels[side])})")
        if QUICKACK:
            print(f"kernel round trip with quick ACKs, proxied / direct (median): "
                  f"{kernel_ms['proxied, quick ACKs'] / kernel_ms['direct, quick ACKs']:.2f}x")
        print(f"(benchmark wall time {time.perf_counter() - began:.0f} s)")
        print(f"kernel round trip, proxied / direct (median): "
              f"{kernel_ms['proxied'] / kernel_ms['direct']:.2f}x (target <= 1.2x)")
        start_ratio = statistics.median(starts["spell"]) / statistics.median(starts["direct"])
        print(f"workspace start, spell jupyter / jupyter lab direct (median): "
              f"{start_ratio:.2f}x (target <= 1.5x)")
        succeeded = True
    finally:
        tear_down(env, head, workdir, keep_logs=not succeeded)


if __name__ == "__main__":
    main()

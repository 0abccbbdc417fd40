"""The server's answer times to 20 clients polling `spell ps` and `spell logs` while 50 runs
execute, against the same polling of the same server once they have ended (idle).

Usage: python benchmarks/server_load.py [--runs 50] [--clients 20] [--interval 0.5]
       [--idle-seconds 30]

Starts a private Ray head (8 CPUs, so the runs overlap) and a spellray server, then the
pollers of tests/chaos/test_load.py (spellray/testing/load.py: threads, each with its own
SDK client, listing the newest runs and reading one's whole log every ``--interval``
seconds). Loaded: from the first submission of ``--runs`` runs of about 2 s printing 10
lines each, until all have ended. Idle: the same polling for ``--idle-seconds``, with the
same runs (ended) in the list and their logs complete, so both phases read the same data.
The last line is p99 under load, p99 idle and their ratio, against the issue's target
(p99 < 1 s on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down  # beside this

from spellray.client import Client
from spellray.testing.load import Pollers, Timings, per_route, percentile, summary

LINES = 10


def command(n: int) -> str:
    return (f"python -c \"import time\nfor i in range({LINES}):\n"
            f"    print('run {n} line', i, flush=True)\n    time.sleep(0.2)\"")


def wait_until_ended(client: Client, ids: set[int], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [run for run in client.runs.list(limit=0).runs if run.id in ids]
        if all(run.status.is_terminal for run in runs):
            failed = [run.id for run in runs if run.status.value != "complete"]
            if failed:
                raise RuntimeError(f"runs {failed} did not complete")
            return
        time.sleep(1)
    raise RuntimeError(f"the runs did not end in {timeout:.0f} s")


def report(name: str, timings: Timings, seconds: float) -> float:
    p99 = percentile(timings.all(), 0.99)
    print(f"{name:<7} {seconds:6.1f} s: {summary(timings)}")
    print(f"{'':<7} {per_route(timings)}")
    if timings.failures:
        print(f"{'':<7} first failures: {timings.failures[:3]}")
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()

    workdir, _, env = bench_workdir()
    head = None
    try:
        head, address = start_ray_head(workdir, num_cpus=8)
        env["SPELLRAY_RAY_ADDRESS"] = address
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=180)
        home = workdir / "home"
        url = f"http://127.0.0.1:{json.loads((home / 'server.json').read_text())['port']}"
        token = (home / "token").read_text().strip()
        client = Client(url, token)
        client.runs.list(1)  # the server's first answer, before any clock starts

        began = time.perf_counter()
        pollers = Pollers(url, token, args.clients, args.interval).start()
        ids = {client.runs.new(command(n), code_dir=None).id for n in range(args.runs)}
        wait_until_ended(client, ids)
        loaded = report("loaded", pollers.stop(), time.perf_counter() - began)

        began = time.perf_counter()
        pollers = Pollers(url, token, args.clients, args.interval, seed=1).start()
        time.sleep(args.idle_seconds)
        idle = report("idle", pollers.stop(), time.perf_counter() - began)
        print(f"p99 with {args.runs} runs executing {loaded * 1000:.0f} ms, idle "
              f"{idle * 1000:.0f} ms: {loaded / idle:.1f}x (target p99 < 1 s: "
              f"{'met' if loaded < 1 else 'missed'})")
    finally:
        tear_down(env, head, workdir)


if __name__ == "__main__":
    os.environ.pop("SPELLRAY_SERVER_URL", None)
    main()

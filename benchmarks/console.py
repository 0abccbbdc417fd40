"""The web console's runs page with 1,000 runs in the DB and a run page whose log has 100,000
lines, against `spell ps` and `spell logs` on the same data.

Usage: python benchmarks/console.py [--runs 1000] [--lines 100000] [--rounds 5]

Seeds a spellray home through the service layer (as benchmarks/many_runs.py does: the
runner's reports, a stand-in for Ray's Jobs API), gives one run a 100,000-line log, starts
a server on a private Ray head, and times, interleaved round by round:

- the runs page (/) and the run page: time to first byte, and a full load (the HTML, then
  the page's CSS and scripts, as a browser's first visit asks for them), each a new
  connection with the admin token (the gate lets a token in as it does the console cookie);
- `spell ps` and `spell logs RUN` as new CLI processes (what a user would run instead).

The last line is the runs page's time to first byte against `spell ps` (target <= 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import httpx
from many_runs import seed, timed  # beside this script
from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down

from spellray.server.services.run_preparation import log_path
from spellray.settings import Settings
from spellray.storage.store import Storage


def long_log(home: Path, run_id: int, lines: int) -> None:
    storage = Storage(Settings(home=home).resolved_storage_uri(), Settings(home=home))
    text = "".join(f"step {i}: loss {1 / (i + 1):.6f} lr 0.001 batch {i % 512}\n"
                   for i in range(lines))
    storage.write_bytes(log_path(run_id), text.encode())


def page_load(url: str, token: str) -> tuple[float, float]:
    """(time to the first byte of the page, time to the page and its assets), new
    connections as a first visit."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    began = time.perf_counter()
    with httpx.Client(timeout=60, trust_env=False, headers=headers) as client:
        with client.stream("GET", url) as response:
            chunks = response.iter_bytes()
            first = next(chunks)
            first_byte = time.perf_counter() - began
            body = first + b"".join(chunks)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        base = url.split("/", 3)[:3]
        for asset in re.findall(rb'(?:src|href)="(/static/[^"]+)"', body):
            client.get("/".join(base) + asset.decode()).raise_for_status()
    return first_byte, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    workdir, _, base_env = bench_workdir()
    head = None
    env: dict[str, str] = {}
    try:
        head, address = start_ray_head(workdir, num_cpus=2)
        home = workdir / "home"
        seed(home, args.runs)
        long_run = args.runs // 2
        long_log(home, long_run, args.lines)
        env = {**base_env, "SPELLRAY_HOME": str(home), "SPELLRAY_RAY_ADDRESS": address}
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=180)
        port = json.loads((home / "server.json").read_text())["port"]
        token = (home / "token").read_text().strip()
        base = f"http://127.0.0.1:{port}"
        pages = {"runs page": f"{base}/", "run page": f"{base}/runs/{long_run}"}
        commands = {"spell ps": ("ps",), "spell logs": ("logs", str(long_run))}
        for url in pages.values():  # warm-up
            page_load(url, token)
        for command in commands.values():
            timed(env, *command)
        first: dict[str, list[float]] = {name: [] for name in pages}
        full: dict[str, list[float]] = {name: [] for name in pages}
        cli: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, url in pages.items():
                byte, whole = page_load(url, token)
                first[name].append(byte)
                full[name].append(whole)
            for name, command in commands.items():
                cli[name].append(timed(env, *command))
        med = {name: statistics.median(values) for name, values in
               [*first.items(), *[(f"{k} (full)", v) for k, v in full.items()], *cli.items()]}
        print(f"{args.runs} runs; run {long_run} has a {args.lines}-line log")
        for name, value in med.items():
            print(f"{name:<22} {value * 1000:8.1f} ms")
        print(f"run page full load / spell logs: "
              f"{med['run page (full)'] / med['spell logs']:.2f}x")
        print(f"runs page full load / spell ps: {med['runs page (full)'] / med['spell ps']:.2f}x")
        print(f"runs page first byte / spell ps: {med['runs page'] / med['spell ps']:.2f}x "
              "(target <= 1.5x)")
    finally:
        if env:
            subprocess.run([*SPELL_CLI, "server", "stop"], env=env, capture_output=True,
                           timeout=60, check=False)
        tear_down({**base_env, **env}, head, workdir)


if __name__ == "__main__":
    os.environ.pop("SPELLRAY_SERVER_URL", None)
    main()

"""A workflow of 10 sequential trivial runs against the same 10 runs from a plain SDK loop.

Usage: python benchmarks/workflow.py [--steps 10] [--rounds 2]

Starts a private Ray head and spellray server. One round times, interleaved: a plain SDK
loop on this machine (start a run of `echo step N`, wait for it to end, next), and a
workflow whose manager (a run itself, on the cluster) does the same loop with its own token,
timed from `client.workflows.create` until the workflow has ended. What the workflow adds is
its manager: one more Ray job, and the SDK's import inside it. The last line of output is
the workflow / loop median ratio (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down  # beside this

from spellray.client import Client

WARMUP_ROUNDS = 1
TIMEOUT = 300.0
POLL = 0.05

MANAGER = '''
import sys, time
from spellray.client import from_environment

client = from_environment()
for step in range(int(sys.argv[1])):
    run = client.runs.new(f"echo step {step}")
    while not (run := client.runs.get(run.id)).status.is_terminal:
        time.sleep(0.05)
    if run.status.value != "complete":
        sys.exit(f"run {run.id} ended {run.status.value}")
'''


def sdk_loop(client: Client, steps: int) -> float:
    began = time.perf_counter()
    for step in range(steps):
        run = client.runs.new(f"echo step {step}", code_dir=None)
        while not (run := client.runs.get(run.id)).status.is_terminal:
            time.sleep(POLL)
        if run.status.value != "complete":
            raise RuntimeError(f"run {run.id} ended {run.status.value}")
    return time.perf_counter() - began


def workflow(client: Client, steps: int, project: Path) -> float:
    began = time.perf_counter()
    created = client.workflows.create(f"python manager.py {steps}", code_dir=project)
    deadline = time.monotonic() + TIMEOUT
    # The manager's run, polled as the loop polls its runs (the workflow, with its runs,
    # is a heavier answer: asking for it 20 times a second would load the server more).
    while not (manager := client.runs.get(created.id)).status.is_terminal:
        if time.monotonic() > deadline:
            raise RuntimeError(f"workflow {created.id} still {manager.status.value}")
        time.sleep(POLL)
    elapsed = time.perf_counter() - began
    found = client.workflows.get(created.id)
    if found.status.value != "complete" or len(found.runs) != steps:
        raise RuntimeError(f"workflow {created.id} ended {found.status.value} "
                           f"({found.status_reason}) with {len(found.runs)} runs")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="sequential runs per case")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per case")
    args = parser.parse_args()

    workdir, project, env = bench_workdir()
    (project / "manager.py").write_text(MANAGER)
    head: int | None = None
    try:
        head, address = start_ray_head(workdir, num_cpus=2)
        env["SPELLRAY_RAY_ADDRESS"] = address
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=300)
        home = Path(env["SPELLRAY_HOME"])
        port = json.loads((home / "server.json").read_text())["port"]
        client = Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())
        times: dict[str, list[float]] = {"SDK loop": [], "workflow": []}
        for i in range(WARMUP_ROUNDS + args.rounds):
            loop = sdk_loop(client, args.steps)
            flow = workflow(client, args.steps, project)
            label = "warm-up" if i < WARMUP_ROUNDS else f"round {i - WARMUP_ROUNDS + 1}"
            print(f"{label:>8}: SDK loop {loop:.2f} s | workflow {flow:.2f} s", flush=True)
            if i >= WARMUP_ROUNDS:
                times["SDK loop"].append(loop)
                times["workflow"].append(flow)
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"{name:>9}: median {value:.2f} s for {args.steps} sequential runs "
                  f"({value / args.steps:.2f} s per run)")
        print(f"workflow / SDK loop (median): {medians['workflow'] / medians['SDK loop']:.2f}x")
    finally:
        tear_down(env, head, workdir)


if __name__ == "__main__":
    main()

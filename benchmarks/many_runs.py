"""`spell ps`, `spell ps -p NAME`, `spell info` and `spell logs` with 10,000 runs in the
state DB (across 50 projects), against `spell ps` with 10.

Usage: python benchmarks/many_runs.py [--runs 10000] [--rounds 5]

Seeds two spellray homes through the server's service layer (RunService: each run is
submitted, reported running, given a log and reported complete, as the runner would), one
with 10 runs and one with ``--runs``, then starts a spellray server on each (one private
Ray head behind both) and times each command as a new CLI process, interleaved, round by
round. Ray is not what is measured: the seeding uses a stand-in for Ray's Jobs API (the
seam where the cluster would be) so 10,000 runs do not need 10,000 real jobs. The last
line is the worst of the four ratios against `spell ps` with 10 runs (target <= 1.5x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down  # beside this

from spellray.schemas import ProjectRequest, RunRequest, RunStatus, StatusReport
from spellray.server.app import build_context
from spellray.server.ownership import FIRST_ADMIN
from spellray.server.services.projects import ProjectService
from spellray.server.services.run_preparation import log_path
from spellray.server.services.runs import RunService
from spellray.settings import Settings

SMALL = 10
LOG_LINES = 200
PROJECTS = 50  # the big DB's runs are spread over this many projects, in turn


class NoRayJobs:
    """Ray's Jobs API as the seeding needs it: a submission that is accepted and forgotten."""

    address = "http://127.0.0.1:9"

    def reachable(self) -> None:
        return None

    def submit(self, *args: Any, **kwargs: Any) -> None:
        return None

    def stop(self, submission_id: str) -> None:
        return None


def seed(home: Path, runs: int, projects: int = 0) -> None:
    """``runs`` complete runs, each with a label, a history of three statuses and a log;
    with ``projects``, spread over that many projects (project-0, project-1, ...) in turn."""
    ctx = build_context(Settings(home=home), "http://127.0.0.1:9")
    ctx.ray = NoRayJobs()  # type: ignore[assignment]
    service = RunService(ctx)
    names = [f"project-{i}" for i in range(projects)]
    for name in names:
        ProjectService(ctx).create(ProjectRequest(name=name), FIRST_ADMIN)
    log = "".join(f"step {i}: loss {1 / (i + 1):.4f}\n" for i in range(LOG_LINES)).encode()
    began = time.perf_counter()
    for number in range(runs):
        run = service.submit(RunRequest(command=f"python train.py --seed {number}",
                                        labels=["seeded"], params={"seed": str(number)},
                                        project=names[number % projects] if names else None))
        service.report(run.id, StatusReport(status=RunStatus.running))
        ctx.storage.write_bytes(log_path(run.id), log)
        service.report(run.id, StatusReport(status=RunStatus.complete, exit_code=0))
    print(f"seeded {runs} runs in {time.perf_counter() - began:.1f} s", flush=True)
    # The server opens this DB next: no connection of ours may stay open on it.
    ctx.sessions.kw["bind"].dispose()


def timed(env: dict[str, str], *args: str) -> float:
    began = time.perf_counter()
    result = subprocess.run([*SPELL_CLI, *args], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"spell {' '.join(args)} failed: {result.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the big DB")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds")
    args = parser.parse_args()

    workdir, _, base_env = bench_workdir()
    head = None
    envs: dict[str, dict[str, str]] = {}
    try:
        head, address = start_ray_head(workdir, num_cpus=2)
        for name, count, projects in (("small", SMALL, 0), ("big", args.runs, PROJECTS)):
            home = workdir / name
            seed(home, count, projects)
            envs[name] = {**base_env, "SPELLRAY_HOME": str(home),
                          "SPELLRAY_RAY_ADDRESS": address}
            subprocess.run([*SPELL_CLI, "server", "start"], env=envs[name], check=True,
                           capture_output=True, timeout=180)
        middle = str(args.runs // 2)
        cases = {
            f"spell ps, {SMALL} runs": (envs["small"], ("ps",)),
            f"spell ps, {args.runs} runs": (envs["big"], ("ps",)),
            f"spell ps -p, {args.runs} runs": (envs["big"], ("ps", "-p", "project-25")),
            f"spell info, {args.runs} runs": (envs["big"], ("info", middle)),
            f"spell logs, {args.runs} runs": (envs["big"], ("logs", middle)),
        }
        for env, command in cases.values():  # warm-up: the servers' first answers
            timed(env, *command)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (env, command) in cases.items():
                times[name].append(timed(env, *command))
        baseline = statistics.median(times[f"spell ps, {SMALL} runs"])
        worst = 0.0
        for name, values in times.items():
            median = statistics.median(values)
            ratio = median / baseline
            worst = max(worst, ratio)
            print(f"{name:<31} {median:6.3f} s  {ratio:.2f}x")
        print(f"worst against spell ps with {SMALL} runs: {worst:.2f}x (target 1.5x)")
    finally:
        for env in envs.values():
            subprocess.run([*SPELL_CLI, "server", "stop"], env=env, capture_output=True,
                           timeout=60, check=False)
        tear_down({**base_env, **envs.get("small", {})}, head, workdir)


if __name__ == "__main__":
    os.environ.pop("SPELLRAY_SERVER_URL", None)
    main()

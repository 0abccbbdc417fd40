"""What hardware stats cost the user's work: a CPU-bound script (fixed work) run with stats
sampled every second against stats off, interleaved round by round.

Usage: python benchmarks/stats_overhead.py [--rounds N] [--work N]

Starts a private Ray head and spellray server, then runs the same script as real runs,
with SPELLRAY_STATS_INTERVAL_SECONDS=1 and twice with =0 (off), the order rotating every
round so machine noise hits all alike; the two stats-off arms' ratio is the noise floor.
The script times its own work (so run start-up, equal for all, is not in the figure) and
prints it. Also printed: what one sample costs the runner in-process, and `spell stats` of
the last sampled run. The last line is the median ratio, stats at 1 s / stats off (target <= 1.02x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from private_cluster import bench_workdir, start_ray_head, tear_down  # beside this script

from spellray.client import Client

SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
# Fixed work: a pure-Python loop (one core), timed by the script itself.
SCRIPT = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "total = 0\n"
    "for i in range(int(sys.argv[1])):\n"
    "    total += i * i % 7\n"
    "print('work seconds', time.perf_counter() - start, total)\n"
)


def work_seconds(client: Client, project: Path, work: int, interval: str) -> tuple[float, int]:
    """The script's own time for its work, and the run's number."""
    run = client.runs.new(f"python work.py {work}", code_dir=project,
                          env={"SPELLRAY_STATS_INTERVAL_SECONDS": interval})
    end = list(client.runs.follow(run.id))[-1]
    if end.status.value != "complete":
        raise RuntimeError(f"run {run.id} ended {end.status.value}")
    log = client.runs.logs(run.id).text
    return float(next(line.split()[2] for line in log.splitlines()
                      if line.startswith("work seconds"))), run.id


def sample_cost() -> float:
    """CPU seconds one sample takes in-process (this process's tree, the node, no GPU):
    CPU time, not wall time, so a loaded machine does not inflate it."""
    import os

    from spellray.runner.hardware_stats import HardwareSampler

    sampler = HardwareSampler(os.getpid, lambda _: None, 3600)
    rounds = 200
    start = time.process_time()
    for _ in range(rounds):
        sampler._read()
    cost = (time.process_time() - start) / rounds
    sampler.close()
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per setting")
    parser.add_argument("--work", type=int, default=40_000_000, help="loop iterations")
    args = parser.parse_args()

    workdir, project, env = bench_workdir()
    (project / "work.py").write_text(SCRIPT)
    head: int | None = None
    succeeded = False
    try:
        head, address = start_ray_head(workdir, num_cpus=4)
        env["SPELLRAY_RAY_ADDRESS"] = address
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=300)
        home = Path(env["SPELLRAY_HOME"])
        port = json.loads((home / "server.json").read_text())["port"]
        client = Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())

        work_seconds(client, project, args.work // 10, "0")  # warm-up: worker pools, MLflow
        # Two stats-off arms: their ratio is the machine's noise floor, against which the
        # stats figure is read (a 2-core machine moves a 3 s loop by several percent).
        arms = {"on": "1", "off": "0", "off again": "0"}
        times: dict[str, list[float]] = {arm: [] for arm in arms}
        sampled = 0
        for i in range(args.rounds):
            names = list(arms)
            order = names[i % 3:] + names[:i % 3]  # each arm first, second and third in turn
            line = []
            for arm in order:
                seconds, run_id = work_seconds(client, project, args.work, arms[arm])
                times[arm].append(seconds)
                sampled = run_id if arm == "on" else sampled
                line.append(f"stats {'1 s' if arm == 'on' else arm} {seconds:.3f} s")
            print(f"round {i + 1}: " + " | ".join(line), flush=True)

        shown = subprocess.run([*SPELL_CLI, "stats", str(sampled)],
                               env=env, capture_output=True, text=True, timeout=60)
        print(shown.stdout)
        on, off, again = (statistics.median(times[arm]) for arm in arms)
        print(f"one sample in-process: {sample_cost() * 1000:.2f} ms of CPU")
        print(f"work, stats at 1 s: median {on:.3f} s (min {min(times['on']):.3f}); "
              f"stats off: median {off:.3f} s (min {min(times['off']):.3f}); "
              f"off again: median {again:.3f} s")
        print(f"noise floor, stats off again / stats off (median): {again / off:.3f}x")
        print(f"stats at 1 s / stats off (median work time): {on / off:.3f}x")
        succeeded = True
    finally:
        tear_down(env, head, workdir, keep_logs=not succeeded)


if __name__ == "__main__":
    main()

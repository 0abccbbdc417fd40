"""End-to-end latency of a trivial `spell run` against Ray's own ways of running a job.

Usage: python benchmarks/run_latency.py [--rounds N]

Starts a private Ray head and spellray server, then times `echo hi` submitted and waited for
until complete three ways, interleaved round by round so machine noise hits all equally:
the spell CLI, the spellray SDK (in-process), the raw Ray Jobs SDK (in-process) and
`ray job submit`. The last line of
output is the spell / raw-SDK median ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from private_cluster import bench_workdir, start_ray_head, tear_down  # beside this script
from ray.job_submission import JobStatus, JobSubmissionClient

from spellray.client import Client

RAY_CLI = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
WARMUP_ROUNDS = 2
HELP_ROUNDS = 20
JOB_TIMEOUT = 120.0


def run_checked(args: list[str], what: str, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=JOB_TIMEOUT,
                            env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(name: str, times: list[float]) -> str:
    return (f"{name:<22} median {statistics.median(times):7.3f} s   "
            f"min {min(times):7.3f} s   max {max(times):7.3f} s   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per method")
    rounds = parser.parse_args().rounds

    workdir, project, env = bench_workdir()

    head: int | None = None
    succeeded = False
    began = time.perf_counter()
    try:
        head, address = start_ray_head(workdir, num_cpus=4)
        env["SPELLRAY_RAY_ADDRESS"] = address
        print(f"Ray head at {address} (workdir {workdir})", flush=True)
        run_checked([*SPELL_CLI, "server", "start"], "spell server start", env=env)
        sdk = JobSubmissionClient(address)
        home = Path(env["SPELLRAY_HOME"])
        port = json.loads((home / "server.json").read_text())["port"]
        spellray_sdk = Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())

        def spell_sdk() -> None:
            # The same path as the CLI minus process start-up: package, submit, follow.
            run = spellray_sdk.runs.new("echo hi", code_dir=project)
            end = list(spellray_sdk.runs.follow(run.id))[-1]
            if end.status.value != "complete":
                raise RuntimeError(f"spellray run {run.id} ended {end.status.value}")

        def spell_run() -> None:
            run_checked([*SPELL_CLI, "run", "echo hi"], "spell run", env=env, cwd=project)

        def raw_sdk() -> None:
            job_id = sdk.submit_job(entrypoint="echo hi", entrypoint_num_cpus=1)
            deadline = time.monotonic() + JOB_TIMEOUT
            while not (status := sdk.get_job_status(job_id)).is_terminal():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Ray job {job_id} still {status} after {JOB_TIMEOUT} s")
                time.sleep(0.05)
            if status != JobStatus.SUCCEEDED:
                raise RuntimeError(f"Ray job {job_id} ended {status}")

        def ray_job_submit() -> None:
            run_checked([*RAY_CLI, "job", "submit", "--address", address,
                         "--entrypoint-num-cpus", "1", "--", "echo", "hi"], "ray job submit")

        methods: dict[str, Callable[[], None]] = {
            "spell run": spell_run, "spellray SDK": spell_sdk, "raw Jobs SDK": raw_sdk,
            "ray job submit": ray_job_submit}
        times: dict[str, list[float]] = {name: [] for name in methods}
        # The first Ray jobs are slow (worker pools, dashboard caches): don't count them.
        for i in range(WARMUP_ROUNDS + rounds):
            label = f"warm-up {i + 1}" if i < WARMUP_ROUNDS else f"round {i - WARMUP_ROUNDS + 1}"
            line = []
            for name, fn in methods.items():
                elapsed = timed(fn)
                if i >= WARMUP_ROUNDS:
                    times[name].append(elapsed)
                line.append(f"{name} {elapsed:.3f} s")
            print(f"{label:>10}: " + " | ".join(line), flush=True)

        # CLI start-up cost alone: how much of a spell command is importing spellray
        # (target: spell --help <= 3x python -c pass). Interleaved, like the rounds above.
        help_times: list[float] = []
        bare_times: list[float] = []
        for _ in range(HELP_ROUNDS):
            help_times.append(timed(lambda: run_checked([*SPELL_CLI, "--help"], "spell --help",
                                                        env=env)))
            bare_times.append(timed(lambda: run_checked([sys.executable, "-c", "pass"],
                                                        "python")))

        print()
        for name, values in times.items():
            print(summary(name, values))
        print(summary("spell --help", help_times))
        print(summary("python -c pass", bare_times))
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"spell --help / python -c pass (median): "
              f"{statistics.median(help_times) / statistics.median(bare_times):.2f}x")
        print(f"spellray SDK / raw Jobs SDK, both in-process (median): "
              f"{median['spellray SDK'] / median['raw Jobs SDK']:.2f}x")
        print(f"spell run / ray job submit (median): "
              f"{median['spell run'] / median['ray job submit']:.2f}x")
        print(f"(benchmark wall time {time.perf_counter() - began:.0f} s)")
        print(f"spell run / raw Jobs SDK (median): "
              f"{median['spell run'] / median['raw Jobs SDK']:.2f}x")
        succeeded = True
    finally:
        tear_down(env, head, workdir, keep_logs=not succeeded)


if __name__ == "__main__":
    main()

"""Submit-to-running on an autoscaling cluster: a run that finds a warm machine of its type
against one whose machine the autoscaler must start (cold), on Ray's fake multi-node
provider (the real autoscaler; a "machine" is a raylet started on this machine, so the cold
figure has no cloud boot time in it: on AWS/GCP add the instance's minutes).

Measured for a spellray run (SDK in-process: package, submit, poll until the user's command
runs) and for the same request straight to Ray's Jobs SDK (until the job is RUNNING), in
the same cluster and process. Printed: each median, then the cold / warm ratio last.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from private_cluster import bench_workdir, start_server  # beside this script

from spellray.cluster.launcher_config import machine_resource
from spellray.schemas import MachineType
from spellray.testing.fake_cluster import start_fake_cluster

SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
BIG = "CPU-big"
IDLE_MINUTES = 0.1
TIMEOUT = 180.0


def machine_type(min_machines: int) -> MachineType:
    return MachineType(name=BIG, num_cpus=1, resources={machine_resource(BIG): 1},
                       machine_cpus=2, price_per_hour=0.384, min_machines=min_machines,
                       max_machines=1, idle_timeout_minutes=IDLE_MINUTES)


def wait(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per case")
    rounds = parser.parse_args().rounds

    from ray.job_submission import JobStatus, JobSubmissionClient
    from ray.util.state import list_nodes

    workdir, project, env = bench_workdir()
    home = Path(env["SPELLRAY_HOME"])
    home.mkdir()
    (home / "machine_types.json").write_text(
        "[" + machine_type(0).model_dump_json(exclude_none=True) + "]")
    cluster = start_fake_cluster(workdir / "cluster", [machine_type(0)],
                                 idle_timeout_minutes=IDLE_MINUTES)
    try:
        env["SPELLRAY_RAY_ADDRESS"] = cluster.dashboard_address
        spell = start_server(env)
        ray_jobs = JobSubmissionClient(cluster.dashboard_address)

        def big_nodes() -> int:
            return sum(1 for n in list_nodes(address=cluster.dashboard_address, detail=True)
                       if n.state == "ALIVE" and machine_resource(BIG) in n.resources_total)

        def spellray_run() -> float:
            began = time.perf_counter()
            run = spell.runs.new("python train.py", machine_type=BIG, code_dir=project)
            wait(lambda: spell.runs.get(run.id).status.value in
                 ("running", "saving", "complete"), f"run {run.id} to run")
            elapsed = time.perf_counter() - began
            wait(lambda: spell.runs.get(run.id).status.is_terminal, f"run {run.id} to end")
            return elapsed

        def raw_job() -> float:
            began = time.perf_counter()
            job = ray_jobs.submit_job(entrypoint="python -c 'print(1)'", entrypoint_num_cpus=1,
                                      entrypoint_resources={machine_resource(BIG): 1})
            wait(lambda: ray_jobs.get_job_status(job) in
                 (JobStatus.RUNNING, JobStatus.SUCCEEDED), f"job {job} to run")
            elapsed = time.perf_counter() - began
            wait(lambda: ray_jobs.get_job_status(job).is_terminal(), f"job {job} to end")
            return elapsed

        cases: dict[str, list[float]] = {}
        for _ in range(rounds):
            for name, measure in (("spellray", spellray_run), ("raw Ray Jobs", raw_job)):
                # Cold: no machine of the type, so the autoscaler starts one.
                cluster.set_machine_types([machine_type(0)])
                wait(lambda: big_nodes() == 0, "the idle machine to go away")
                cases.setdefault(f"{name} cold", []).append(measure())
                # Warm: min machines 1 keeps one up; it is there before the submission.
                cluster.set_machine_types([machine_type(1)])
                wait(lambda: big_nodes() == 1, "a warm machine")
                cases.setdefault(f"{name} warm", []).append(measure())
                print(f"  {name}: cold {cases[f'{name} cold'][-1]:.2f} s, "
                      f"warm {cases[f'{name} warm'][-1]:.2f} s", flush=True)
        medians = {name: statistics.median(values) for name, values in cases.items()}
        for name, value in medians.items():
            print(f"{name:>20}: median {value:.2f} s over {len(cases[name])} rounds")
        print(f"spellray / raw Ray Jobs, warm (median): "
              f"{medians['spellray warm'] / medians['raw Ray Jobs warm']:.2f}")
        print(f"spellray / raw Ray Jobs, cold (median): "
              f"{medians['spellray cold'] / medians['raw Ray Jobs cold']:.2f}")
        print(f"spellray submit-to-running, cold / warm (median): "
              f"{medians['spellray cold'] / medians['spellray warm']:.2f}")
    finally:
        subprocess.run([*SPELL_CLI, "server", "stop"], env=env, capture_output=True,
                       timeout=60, check=False)
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A spot machine lost mid-run: from the machine's death to the resumed run running, against
a fresh run's submit-to-running on the same cluster (issue 22's figure, target 1.5x).

On Ray's fake multi-node provider with two warm machines of a spot type: the second stands
in for the machine a cloud would start in the lost one's place, whose boot minutes this
figure leaves out (the autoscaler's replacement of a lost machine: tests/chaos/test_spot.py).
The head's GCS declares a lost node dead as every spellray head's does
(spellray/cluster/node_health.py). Each round, on a cluster of its own: a fresh run of the
spot type (its submit-to-running timed), then its machine's raylet SIGKILLed, then the time
until the run Ray's loss made (`resumed_as`) is running, split into "until spellray says
interrupted" (Ray noticing the node is gone) and "interrupted to resumed run running"
(spellray's own part).
Printed: each median, then the ratio resume / fresh last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from private_cluster import bench_workdir, start_server  # beside this script

from spellray.cluster.launcher_config import machine_resource
from spellray.schemas import MachineType
from spellray.testing.fake_cluster import start_fake_cluster

SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
SPOT = "CPU-spot"
TIMEOUT = 300.0
HELD = "sleep 600"


def machine_type() -> MachineType:
    return MachineType(name=SPOT, num_cpus=1, resources={machine_resource(SPOT): 1},
                       machine_cpus=1, price_per_hour=0.1, min_machines=2, max_machines=2,
                       idle_timeout_minutes=1, spot=True, default_auto_resume=True)


def wait(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT) -> object:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def one_round() -> dict[str, float]:
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_nodes

    workdir, project, env = bench_workdir()
    home = workdir / "home"
    home.mkdir()
    (home / "machine_types.json").write_text(
        "[" + machine_type().model_dump_json(exclude_none=True) + "]")
    cluster = start_fake_cluster(workdir / "cluster", [machine_type()], idle_timeout_minutes=1)
    try:
        env["SPELLRAY_RAY_ADDRESS"] = cluster.dashboard_address
        spell = start_server(env)
        wait(lambda: sum(1 for n in list_nodes(address=cluster.dashboard_address, detail=True)
                         if n.state == "ALIVE" and machine_resource(SPOT) in n.resources_total)
             == 2, "two warm spot machines")

        began = time.perf_counter()
        run = spell.runs.new(HELD, machine_type=SPOT, code_dir=project)
        wait(lambda: spell.runs.get(run.id).status.value == "running", f"run {run.id} to run")
        fresh = time.perf_counter() - began

        submission = spell.runs.get(run.id).ray_submission_id
        node = JobSubmissionClient(cluster.dashboard_address).get_job_info(
            submission).driver_node_id
        [raylet] = subprocess.run(["pgrep", "-f", f"raylet.*--node_id={node}"],
                                  capture_output=True, text=True).stdout.split()
        killed = time.perf_counter()
        os.kill(int(raylet), signal.SIGKILL)
        wait(lambda: spell.runs.get(run.id).status.value == "interrupted",
             f"run {run.id} to be interrupted")
        interrupted = time.perf_counter()
        resumed = wait(lambda: spell.runs.get(run.id).resumed_as, "the resumed run")
        wait(lambda: spell.runs.get(resumed).status.value == "running",
             f"run {resumed} to run")
        running = time.perf_counter()
        spell.runs.kill(resumed)
        return {"fresh run, submit to running": fresh,
                "node killed to interrupted": interrupted - killed,
                "interrupted to resumed run running": running - interrupted,
                "node killed to resumed run running": running - killed}
    finally:
        subprocess.run([*SPELL_CLI, "server", "stop"], env=env, capture_output=True,
                       timeout=60, check=False)
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds, a cluster each")
    rounds = parser.parse_args().rounds
    cases: dict[str, list[float]] = {}
    for number in range(rounds):
        for name, value in one_round().items():
            cases.setdefault(name, []).append(value)
        print(f"  round {number + 1}: " + ", ".join(
            f"{name} {values[-1]:.2f} s" for name, values in cases.items()), flush=True)
    medians = {name: statistics.median(values) for name, values in cases.items()}
    for name, value in medians.items():
        print(f"{name:>36}: median {value:.2f} s over {len(cases[name])} rounds")
    ratio = medians["node killed to resumed run running"] / medians[
        "fresh run, submit to running"]
    print(f"resumed run running after the node's death / a fresh run's submit-to-running "
          f"(median): {ratio:.2f}")
    # The machine's own load: the figures move with it (docs/benchmarks.md says which).
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

"""`spell run "echo hi"` on an on-prem cluster of simulated hosts, through the SSH tunnel,
against the same run on the local default (a private Ray head on this machine).

Usage: sudo python benchmarks/cluster_hosts.py [--rounds N]   (root: network namespaces)

Makes the simulated hosts of tests/cluster_hosts/ (head and worker, each with sshd), brings
the cluster up with `spell cluster init onprem` + `spell cluster up`, then times both runs
round by round, interleaved so machine noise hits both alike. Then it changes the worker's
machine type twice: by `spell cluster update` (in place, no Ray restart) and, as before it
could, by `spell cluster up` (Ray restarted on every host), each timed until the worker is
alive under its new type. The last line of output is the cluster / local median ratio
(target: at most 1.5).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from private_cluster import SPELL_CLI, bench_workdir, start_ray_head, tear_down

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.cluster_hosts
from tests.cluster_hosts.hosts import make_network, missing

WARMUP_ROUNDS = 2


def spell(env: dict[str, str], *args: str, cwd: Path) -> str:
    done = subprocess.run([*SPELL_CLI, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"spell {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def timed_run(env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    out = spell(env, "run", "echo hi", cwd=cwd)
    elapsed = time.perf_counter() - start
    if "hi" not in out.split():
        raise RuntimeError(f"the run's log has no 'hi':\n{out}")
    return elapsed


def wait_for_worker(env: dict[str, str], cwd: Path, machine_type: str = "CPU",
                    timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = spell(env, "cluster", "status", cwd=cwd)
        if any(line.split()[1:3] == [machine_type, "alive"] for line in rows.splitlines()
               if ".." in line):
            return
        time.sleep(1)
    raise RuntimeError(f"the worker did not join as {machine_type} in {timeout:g} s")


def timed_retype(env: dict[str, str], cwd: Path, name: str, worker_ip: str,
                 machine_type: str, command: str) -> float:
    """Seconds from the edit until the worker is alive under ``machine_type``."""
    start = time.perf_counter()
    spell(env, "cluster", "machine-type", "add", machine_type, "--host", worker_ip,
          "-c", name, cwd=cwd)
    spell(env, "cluster", command, name, cwd=cwd)
    wait_for_worker(env, cwd, machine_type)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per side")
    rounds = parser.parse_args().rounds
    if reason := missing():
        sys.exit(reason)

    workdir, project, local_env = bench_workdir()
    storage = workdir / "storage"
    storage.mkdir()
    network = make_network(workdir / "hosts", [("head", True), ("worker", True)])
    head_pid = None
    # The cluster's CLI home: `cluster up` selects the cluster there, so its runs go through
    # the tunnel; the local side keeps its own home and the private head.
    cluster_env = {**local_env, "SPELLRAY_HOME": str(workdir / "cluster-home")}
    name = "bench-hosts"
    failed = True
    try:
        head_pid, address = start_ray_head(workdir, num_cpus=2)
        local_env["SPELLRAY_RAY_ADDRESS"] = address
        spell(cluster_env, "cluster", "init", "onprem", "--name", name, "--storage",
              str(storage), "--head-ip", network["head"].ip, "--worker-ip",
              network["worker"].ip, "--ssh-user", "root", "--ssh-key", str(network.key),
              cwd=project)
        started = time.perf_counter()
        spell(cluster_env, "cluster", "up", name, cwd=project)
        wait_for_worker(cluster_env, project)
        print(f"cluster up and worker joined in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {"local default": [], "on-prem via tunnel": []}
        for i in range(WARMUP_ROUNDS + rounds):
            for side, env in (("local default", local_env),
                              ("on-prem via tunnel", cluster_env)):
                elapsed = timed_run(env, project)
                if i >= WARMUP_ROUNDS:
                    times[side].append(elapsed)
        for side, values in times.items():
            print(f"{side:<20} median {statistics.median(values):7.3f} s   "
                  f"min {min(values):7.3f} s   max {max(values):7.3f} s   (n={len(values)})")
        worker_ip = network["worker"].ip
        in_place = timed_retype(cluster_env, project, name, worker_ip, "big", "update")
        restarted = timed_retype(cluster_env, project, name, worker_ip, "CPU", "up")
        print(f"worker retyped by update (no Ray restart) {in_place:.1f} s, by up (Ray "
              f"restarted) {restarted:.1f} s: {in_place / restarted:.2f}x")
        ratio = statistics.median(times["on-prem via tunnel"]) / statistics.median(
            times["local default"])
        failed = False
        print(f"on-prem / local median ratio: {ratio:.2f}x (target <= 1.5x)")
    finally:
        subprocess.run([*SPELL_CLI, "cluster", "down", name], env=cluster_env,
                       capture_output=True, timeout=600, check=False)
        network.teardown()
        Path(f"/tmp/ray/cluster-{name}.state").unlink(missing_ok=True)
        Path(f"/tmp/ray/cluster-{name}.lock").unlink(missing_ok=True)
        tear_down(local_env, head_pid, workdir, keep_logs=failed)


if __name__ == "__main__":
    main()

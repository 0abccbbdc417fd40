"""How much a cached environment costs: a trivial `spell run --pip PKG`, first and second
time, against the same run with no environment.

Usage: python benchmarks/env_cache.py [--rounds 5]

Starts a private Ray head and spellray server, then each round times three `spell run`s of
a one-line command, waited for until complete: with no environment, with `--pip six==V` for
a version no earlier round used (Ray builds a new virtualenv with uv: the first time), and
the same again (Ray's cached environment: the second time). The order rotates round by
round so machine noise hits all three alike. Each run's output is checked: the package
must come from the run's own environment, and the plain run must not have one.
Each first time also measures the disk the new environment took on the node: `du` of the
folders it added under the head's runtime_resources (against the node's own site-packages,
printed once), and says which Python the node runs (a virtualenv, or a base Python).
The last line is the headline: second / none, first / none, and MB per environment
(targets: second <= 1.05x, first <= 2.0x, disk <= 50 MB).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from private_cluster import start_ray_head_with_gcs, tear_down  # beside this script

SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
# Pure-Python releases of six, one per round's "first time" (newest first).
SIX_VERSIONS = ["1.15.0", "1.14.0", "1.13.0", "1.12.0", "1.11.0", "1.10.0", "1.9.0",
                "1.8.0", "1.7.3", "1.6.1"]
SHOW = "python -c 'import six, sys; print(\"six\", six.__version__, sys.prefix)'"
RUN_TIMEOUT = 300.0


def spell_run(env: dict[str, str], cwd: Path, *flags: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([*SPELL_CLI, "run", *flags, SHOW], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"spell run {' '.join(flags)} exited {done.returncode}:\n"
                           f"{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def check(output: str, version: str | None) -> None:
    match = re.search(r"^six (\S+) (\S+)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no six line in the run's output:\n{output}")
    in_env = "runtime_resources" in match[2]
    wanted = not in_env if version is None else in_env and match[1] == version
    if not wanted:
        raise RuntimeError(f"wrong environment (wanted six {version or 'of the node'}): "
                           f"{match[0]}")


def env_folders(resources: Path) -> set[Path]:
    """Every environment folder under Ray's runtime_resources (one level below each plugin's
    folder: uv/<hash>, spellray_venv/<hash>, ...)."""
    if not resources.is_dir():
        return set()
    return {p for plugin in resources.iterdir() if plugin.is_dir()
            for p in plugin.iterdir() if p.is_dir()}


def du_mb(*paths: Path) -> float:
    """Disk used, as `du` counts it (a file hard-linked twice among ``paths`` once)."""
    done = subprocess.run(["du", "-sck", *map(str, paths)], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.splitlines()[-1].split()[0]) / 1024


def node_python() -> str:
    kind = "a virtualenv" if sys.prefix != sys.base_prefix else "a base (system) Python"
    return f"{sys.prefix} ({kind})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds")
    rounds = parser.parse_args().rounds
    if rounds > len(SIX_VERSIONS):
        parser.error(f"at most {len(SIX_VERSIONS)} rounds (one fresh six version each)")

    workdir = Path(tempfile.mkdtemp(prefix="spellray-bench-env-"))
    project = workdir / "project"
    project.mkdir()
    (project / "README").write_text("env cache benchmark\n")
    head: int | None = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    try:
        head, address, gcs = start_ray_head_with_gcs(workdir, num_cpus=2)
        resources = Path(f"/tmp/spellray-ray-{gcs.rsplit(':', 1)[1]}/session_latest/"
                         "runtime_resources")
        env.update(SPELLRAY_HOME=str(workdir / "home"), SPELLRAY_RAY_ADDRESS=address)
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=120)
        spell_run(env, project)  # warm-up: the first job on a head pays for its workers
        times: dict[str, list[float]] = {"none": [], "first": [], "second": []}
        disk: list[float] = []
        for r in range(rounds):
            pip = ["--pip", f"six=={SIX_VERSIONS[r]}"]
            steps = [("none", [], None), ("first", pip, SIX_VERSIONS[r]),
                     ("second", pip, SIX_VERSIONS[r])]
            # Rotate "none" around the pair (first must come before second).
            order = [steps[0], steps[1], steps[2]] if r % 3 == 0 else \
                [steps[1], steps[0], steps[2]] if r % 3 == 1 else [steps[1], steps[2], steps[0]]
            for name, flags, version in order:
                before = env_folders(resources)
                elapsed, output = spell_run(env, project, *flags)
                check(output, version)
                times[name].append(elapsed)
                added = ""
                if name == "first":
                    disk.append(du_mb(*(env_folders(resources) - before)))
                    added = f"  (environment: {disk[-1]:8.1f} MB on disk)"
                print(f"  round {r + 1}: {name:<7} {elapsed:6.2f} s{added}", flush=True)
        median = {name: statistics.median(values) for name, values in times.items()}
        print()
        for name, values in times.items():
            print(f"{name:<7} median {median[name]:6.2f} s  min {min(values):6.2f} s  "
                  f"max {max(values):6.2f} s  (n={len(values)})")
        site = [Path(p) for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]
        print(f"node Python: {node_python()}; its site-packages: {du_mb(*site):.0f} MB")
        print(f"disk per environment: median {statistics.median(disk):.1f} MB  "
              f"max {max(disk):.1f} MB")
        print("(targets: second <= 1.05x and first <= 2.0x the run without an environment; "
              "disk <= 50 MB)")
        print(f"second / none: {median['second'] / median['none']:.2f}x; "
              f"first / none: {median['first'] / median['none']:.2f}x; "
              f"disk per environment: {statistics.median(disk):.1f} MB")
    finally:
        tear_down(env, head, workdir)


if __name__ == "__main__":
    main()

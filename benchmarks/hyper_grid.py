"""A grid of a trivial command: `spell hyper grid` against a raw Ray Tune Tuner.

Usage: python benchmarks/hyper_grid.py [--points 16] [--rounds 2] [--defaults | --no-defaults]

Starts a private Ray head (2 CPUs, as the machine has) and spellray server, then times,
alternating which goes first round by round:

- spellray: `spell hyper grid --param i=0,...,15 "echo point :i:"`, from the command until
  the search and its 16 runs are complete (each a numbered run with its log and record);
- raw Tune: in this process, `tune.Tuner` of a function trainable that runs the same
  command with subprocess, one CPU per trial, until `fit()` returns; once with Tune's
  defaults (a new actor per trial) and once with ``reuse_actors=True``, as spellray's
  driver sets it.

Both run the same trials of one CPU each on the same head. Every spellray run's log is
checked for its own point. The comparison is raw Tune with actor reuse (what a Tune expert
would write); Tune's defaults are timed too unless --no-defaults (by default only up to 32
points: a new actor per trial costs over a second each). Per trial: the time over the
number of trials, and what spellray adds to each beyond raw Tune with reuse (flat if the
cost does not grow with the number of runs). The last line is the headline ratio
(spellray / raw Tune with actor reuse, target <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from private_cluster import start_ray_head_with_gcs, tear_down  # beside this script

from spellray.client import Client

SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
TIMEOUT = 900.0


def raw_tune(points: int, storage: Path, reuse_actors: bool | None = None) -> float:
    from ray import tune

    def trainable(config: dict) -> None:
        subprocess.run(["/bin/sh", "-c", f"echo point {config['i']}"], check=True,
                       capture_output=True)

    start = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"i": tune.grid_search(list(range(points)))},
        tune_config=tune.TuneConfig(reuse_actors=reuse_actors),
        run_config=tune.RunConfig(storage_path=str(storage), verbose=0))
    results = tuner.fit()
    elapsed = time.perf_counter() - start
    if len(results) != points or results.errors:
        raise RuntimeError(f"raw Tune: {len(results)} results, errors {results.errors}")
    return elapsed


def spell_grid(points: int, env: dict[str, str], project: Path, client: Client) -> float:
    values = ",".join(str(i) for i in range(points))
    start = time.perf_counter()
    done = subprocess.run([*SPELL_CLI, "hyper", "grid", "--param", f"i={values}",
                           "echo point :i:"], env=env, cwd=project, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"spell hyper grid exited {done.returncode}: {done.stderr}")
    search_id = int(done.stdout.split()[1])
    deadline = time.monotonic() + TIMEOUT
    # The search first, then its runs: asking for every run on every poll would cost the
    # server more requests than the search itself makes, and more the more runs it has.
    while (search := client.hyper.get(search_id)).status in ("running", "stopping"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"search {search_id} still {search.status}")
        time.sleep(0.1)
    if search.status != "complete" or len(search.run_ids) != points:
        raise RuntimeError(f"search {search_id} ended {search.status} with "
                           f"{len(search.run_ids)} runs: {search.status_reason}")
    pending = set(search.run_ids)
    while pending := {r for r in pending if not client.runs.get(r).status.is_terminal}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs {sorted(pending)} of search {search_id} never ended")
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    for run in map(client.runs.get, search.run_ids):  # outside the timing: each did its point
        if run.status.value != "complete":
            raise RuntimeError(f"run {run.id} is {run.status.value}")
        log = client.runs.logs(run.id).text
        if f"point {run.params['i']}" not in log:
            raise RuntimeError(f"run {run.id}'s log lacks its point:\n{log}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--defaults", action=argparse.BooleanOptionalAction, default=None,
                        help="also time raw Tune with its defaults (default: up to 32 points)")
    options = parser.parse_args()
    with_defaults = options.defaults if options.defaults is not None else options.points <= 32

    workdir = Path(tempfile.mkdtemp(prefix="spellray-bench-hyper-"))
    project = workdir / "project"
    project.mkdir()
    (project / "README").write_text("hyper benchmark\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    head = None
    try:
        head, address, gcs = start_ray_head_with_gcs(workdir, num_cpus=2)
        env.update(SPELLRAY_HOME=str(workdir / "home"), SPELLRAY_RAY_ADDRESS=address)
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=120)
        home = workdir / "home"
        port = json.loads((home / "server.json").read_text())["port"]
        client = Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())
        import ray

        # On a loaded machine the head's node may register after its dashboard answers.
        for attempt in range(60):
            try:
                ray.init(address=gcs, logging_level="ERROR")
                break
            except (RuntimeError, ConnectionError):
                if attempt == 59:
                    raise
                time.sleep(5)
        methods = {
            # With the actor reuse spellray's driver turns on (Tune's default is off for
            # function trainables): what a Tune expert would get.
            "raw Tune, reuse": lambda r: raw_tune(options.points, workdir / f"reuse-{r}",
                                                  reuse_actors=True),
            "spell hyper grid": lambda r: spell_grid(options.points, env, project, client),
        }
        if with_defaults:
            methods["raw Tune"] = lambda r: raw_tune(options.points, workdir / f"tune-{r}")
        times: dict[str, list[float]] = {name: [] for name in methods}
        for r in range(options.rounds):
            order = list(methods)
            for name in order if r % 2 == 0 else order[::-1]:
                elapsed = methods[name](r)
                times[name].append(elapsed)
                print(f"  round {r + 1}: {name:<17} {elapsed:7.2f} s "
                      f"({elapsed / options.points:.2f} s per trial)", flush=True)
        median = {name: statistics.median(values) for name, values in times.items()}
        print()
        for name, value in median.items():
            print(f"{name:<17} median {value:7.2f} s for {options.points} trials, "
                  f"{value / options.points:.3f} s per trial")
        added = (median["spell hyper grid"] - median["raw Tune, reuse"]) / options.points
        print(f"spellray adds {added:.3f} s per trial to raw Tune with actor reuse")
        if with_defaults:
            print(f"spell hyper grid / raw Tune with its defaults: "
                  f"{median['spell hyper grid'] / median['raw Tune']:.2f}x")
        print(f"spell hyper grid / raw Tune with actor reuse ({options.points} trials, "
              f"target <= 1.5x): {median['spell hyper grid'] / median['raw Tune, reuse']:.2f}x")
    finally:
        tear_down(env, head, workdir)


if __name__ == "__main__":
    main()

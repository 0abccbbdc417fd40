"""Time from submitting a 2-rank distributed job until both ranks run the user's code:
`spell run --distributed 2` (through the spellray SDK, in-process) against a raw Ray Train
TorchTrainer with 2 workers (ScalingConfig(num_workers=2, use_gpu=False)).

Usage: python benchmarks/distributed.py [--rounds N]

Both sides do the same set-up: each rank joins a gloo process group (spellray: the user's
command calls init_process_group from the variables --distributed sets; Ray Train: before it
calls the train loop), then records time.time(). The figure is the later rank's timestamp
minus the submit time. Rounds are interleaved on one private cluster so machine noise hits
both; the last line is the spellray / Ray Train median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from private_cluster import SPELL_CLI, start_ray_head_with_gcs, tear_down  # beside this script

WARMUP_ROUNDS = 1
# The user's command: join the group, then say when (both sides record the same moment).
RANK_SCRIPT = """\
import os, time
import torch.distributed as dist
dist.init_process_group("gloo")
print("STARTED", os.environ["RANK"], repr(time.time()), flush=True)
dist.barrier()
dist.destroy_process_group()
"""


def spellray_round(client: object, project: Path, storage: Path) -> float:
    began = time.time()
    run = client.runs.new("python rank.py", code_dir=project, distributed=2)  # type: ignore[attr-defined]
    end = list(client.runs.follow(run.id))[-1]  # type: ignore[attr-defined]
    log = (storage / "runs" / str(run.id) / ".spell" / "log").read_text()
    if end.status.value != "complete":
        raise RuntimeError(f"run {run.id} ended {end.status.value}:\n{log}")
    starts = [float(line.split()[-1]) for line in log.splitlines() if "STARTED" in line]
    if len(starts) != 2:
        raise RuntimeError(f"run {run.id}: expected 2 STARTED lines:\n{log}")
    return max(starts) - began


def ray_train_round(marks: Path, storage: Path) -> float:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    shutil.rmtree(marks, ignore_errors=True)
    marks.mkdir()

    def train_loop(config: dict) -> None:
        import time as clock

        import ray.train

        rank = ray.train.get_context().get_world_rank()
        Path(config["marks"], str(rank)).write_text(repr(clock.time()))

    trainer = TorchTrainer(train_loop, train_loop_config={"marks": str(marks)},
                           scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
                           run_config=RunConfig(storage_path=str(storage)))
    began = time.time()
    trainer.fit()
    starts = [float(p.read_text()) for p in marks.iterdir()]
    if len(starts) != 2:
        raise RuntimeError(f"Ray Train: {len(starts)} worker(s) recorded a start")
    return max(starts) - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per method")
    rounds = parser.parse_args().rounds

    import ray

    from spellray.client import Client

    workdir = Path(tempfile.mkdtemp(prefix="spellray-bench-dist-"))
    project = workdir / "project"
    project.mkdir()
    (project / "rank.py").write_text(RANK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env["SPELLRAY_HOME"] = str(workdir / "home")
    head = None
    began = time.perf_counter()
    try:
        head, address, gcs = start_ray_head_with_gcs(workdir, num_cpus=4)
        env["SPELLRAY_RAY_ADDRESS"] = address
        print(f"Ray head at {address} (GCS {gcs}, workdir {workdir})", flush=True)
        subprocess.run([*SPELL_CLI, "server", "start"], env=env, check=True,
                       capture_output=True, timeout=300)
        home = Path(env["SPELLRAY_HOME"])
        port = json.loads((home / "server.json").read_text())["port"]
        client = Client(f"http://127.0.0.1:{port}", (home / "token").read_text().strip())
        ray.init(address=gcs, log_to_driver=False, logging_level="ERROR")
        times: dict[str, list[float]] = {"spell run --distributed 2": [],
                                         "Ray Train TorchTrainer": []}
        for i in range(WARMUP_ROUNDS + rounds):
            spell = spellray_round(client, project, home / "storage")
            train = ray_train_round(workdir / "marks", workdir / "train")
            label = f"warm-up {i + 1}" if i < WARMUP_ROUNDS else f"round {i - WARMUP_ROUNDS + 1}"
            print(f"{label:>10}: spellray {spell:.3f} s | Ray Train {train:.3f} s", flush=True)
            if i >= WARMUP_ROUNDS:
                times["spell run --distributed 2"].append(spell)
                times["Ray Train TorchTrainer"].append(train)
        print()
        for name, values in times.items():
            print(f"{name:<26} median {statistics.median(values):7.3f} s   "
                  f"min {min(values):7.3f} s   max {max(values):7.3f} s   (n={len(values)})")
        print(f"(benchmark wall time {time.perf_counter() - began:.0f} s)")
        ratio = (statistics.median(times["spell run --distributed 2"])
                 / statistics.median(times["Ray Train TorchTrainer"]))
        print(f"spellray --distributed 2 / Ray Train TorchTrainer, submit to both ranks "
              f"running (median): {ratio:.2f}x")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        tear_down(env, head, workdir)


if __name__ == "__main__":
    sys.exit(main())

"""Storage throughput of `spell upload` / `spell cp` and of mounts, against the obvious baselines.

Usage: python benchmarks/storage.py [--size-mb 512] [--rounds 1] [--mounts-only]

Makes a folder of about --size-mb MB of mixed-size files (half in a few big files, a quarter
in 8 MB-class files, the rest 1 MB files and ~1000 files of 4-40 KB in nested folders), then:

- S3 (a private moto server): `spell upload` against a boto3 `upload_file` loop, and
  `spell cp` against a boto3 `download_file` loop (default TransferConfig), same endpoint;
- local storage: `spell upload` / `spell cp` against `shutil.copytree`;
- mounts: `spell run -m uploads/...:data` twice on S3 storage (cold node cache, then warm), and
  once on local storage; mount times are the runner's own, from the run's run.json.

Every copy is checked (file names and contents) before its time counts. With --rounds > 1
the methods alternate order round by round and medians are reported. The last line of
output is the headline: upload and cp ratios against boto3, and cached / first mount time.
Targets: at least 0.9x boto3, and a cached mount under 5% of the first.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.s3 is not installed; benchmarks run from a checkout

from private_cluster import start_ray_head  # noqa: E402  (beside this script)

from spellray.cluster.local import RAY_STOP_GRACE, stop_process_group  # noqa: E402
from tests.s3 import MotoS3, start_moto_server  # noqa: E402

SPELL_CLI = [sys.executable, "-m", "spellray.cli.main"]
MB = 1 << 20
COMMAND_TIMEOUT = 1800.0  # a 512 MB copy through moto can take minutes on a slow machine
RUN_ID = re.compile(r"run (\d+) started")


def make_dataset(root: Path, size_mb: int, seed: int = 0) -> tuple[int, int]:
    """Write the mixed-size folder; return (files, bytes). Random bytes, so nothing
    compresses and no layer can dedupe its way to a better figure."""
    rng = random.Random(seed)
    scale = size_mb / 512
    total = size_mb * MB
    sizes: dict[str, int] = {}
    for i in range(4):  # 4 x 64 MB at 512 MB: multipart territory for boto3
        sizes[f"large/part-{i}.bin"] = total // 8
    for i in range(16):  # 16 x 8 MB: right at boto3's multipart threshold
        sizes[f"medium/shard-{i:02d}.bin"] = total // 64
    for i in range(max(1, round(100 * scale))):
        sizes[f"mb/chunk-{i:03d}.bin"] = MB
    for i in range(max(1, round(1000 * scale))):  # per-request overhead dominates these
        sizes[f"small/{i // 100:02d}/{i % 10}/item-{i:04d}.dat"] = rng.randint(4 << 10, 40 << 10)
    for rel, size in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            while size > 0:
                block = min(size, 8 * MB)
                f.write(os.urandom(block))
                size -= block
    return len(sizes), sum(sizes.values())


def local_files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size
            for p in root.rglob("*") if p.is_file()}


def check_same_tree(expected: Path, got: Path, what: str) -> None:
    """Same names, sizes and bytes: a fast copy of the wrong thing must not count."""
    want, have = local_files(expected), local_files(got)
    if want != have:
        missing = sorted(set(want) - set(have))[:5]
        extra = sorted(set(have) - set(want))[:5]
        raise RuntimeError(f"{what}: tree differs (missing {missing}, extra {extra}, "
                           f"{len(want)} vs {len(have)} files)")
    for rel in want:
        if not filecmp.cmp(expected / rel, got / rel, shallow=False):
            raise RuntimeError(f"{what}: {rel} differs in content")


def s3_sizes(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                  Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) + 1:]] = obj["Size"]
    return found


def check_s3_tree(expected: Path, client: Any, bucket: str, prefix: str, what: str) -> None:
    """Names and sizes in the bucket (contents are checked when they come back down)."""
    want, have = local_files(expected), s3_sizes(client, bucket, prefix)
    if want != have:
        raise RuntimeError(f"{what}: s3://{bucket}/{prefix} has {len(have)} objects / "
                           f"{sum(have.values())} bytes, expected {len(want)} / "
                           f"{sum(want.values())}")


def spell(args: list[str], env: dict[str, str], cwd: Path | None = None
          ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SPELL_CLI, *args], capture_output=True, text=True, env=env,
                            cwd=cwd, timeout=COMMAND_TIMEOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"spell {' '.join(args)} exited {result.returncode}:\n"
                           f"{result.stdout}\n{result.stderr}")
    return result


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mount_run(env: dict[str, str], project: Path, resource: str,
              read_record: Callable[[int], dict[str, Any]]) -> tuple[float, float, float, int]:
    """`spell run -m RESOURCE:data "du -sh data"`: (mount seconds, listing seconds, wall
    seconds, bytes downloaded) - mount seconds as the runner measured them, so Ray's
    scheduling is out."""
    start = time.perf_counter()
    result = spell(["run", "-m", f"{resource}:data", "du -shL data"], env, cwd=project)
    wall = time.perf_counter() - start
    match = RUN_ID.search(result.stderr)
    if match is None:
        raise RuntimeError(f"no run id in spell run's output:\n{result.stderr}")
    mounts = read_record(int(match[1]))["result"]["mounts"]
    if len(mounts) != 1 or mounts[0]["resource"] != resource:
        raise RuntimeError(f"unexpected mounts in run {match[1]}: {mounts}")
    return (float(mounts[0]["seconds"]), float(mounts[0]["listing_seconds"]), wall,
            int(mounts[0]["bytes_downloaded"]))


def rate(size: int, seconds: float) -> str:
    return f"{size / MB / seconds:8.1f} MB/s"


def print_copy_figures(times: dict[str, list[float]], size: int,
                       mount_median: dict[str, float], began: float, cached: float) -> None:
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in median.items():
        print(f"{name:<22} {seconds:8.2f} s {rate(size, seconds)}")
    # Ratios of throughput, so > 1 means spellray is faster.
    up = median["boto3 upload_file"] / median["spell upload (S3)"]
    down = median["boto3 download_file"] / median["spell cp (S3)"]
    print(f"spell upload / copytree (local storage): "
          f"{median['copytree in'] / median['spell upload (local)']:.2f}x")
    print(f"spell cp / copytree (local storage): "
          f"{median['copytree out'] / median['spell cp (local)']:.2f}x")
    print(f"first S3 mount / spell cp (S3), throughput: "
          f"{median['spell cp (S3)'] / mount_median['first mount (S3)']:.2f}x")
    print(f"(benchmark wall time {time.perf_counter() - began:.0f} s; targets: "
          f">= 0.90x boto3, cached mount < 5% of first)")
    print(f"spell upload / boto3 upload_file: {up:.2f}x; "
          f"spell cp / boto3 download_file: {down:.2f}x; "
          f"cached mount / first mount: {cached:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512, help="size of the test folder")
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds per method")
    parser.add_argument("--mounts-only", action="store_true",
                        help="upload once (untimed) and measure only the mounts, each round")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="spellray-bench-storage-"))
    data = workdir / "data"
    project = workdir / "project"  # `spell run` packages the cwd: keep it tiny
    project.mkdir()
    (project / "README").write_text("storage benchmark\n")
    # Only our SPELLRAY_* settings: an inherited server URL or home would skew the numbers.
    base = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    # The runner inherits the Ray head's environment: this is where mounts cache on the node.
    cache_dir = workdir / "node-cache"
    for key in set(os.environ) - set(base):
        del os.environ[key]
    os.environ["SPELLRAY_CACHE_DIR"] = str(cache_dir)

    moto: MotoS3 | None = None
    head: int | None = None
    homes: list[dict[str, str]] = []  # envs of servers to stop
    succeeded = False
    began = time.perf_counter()
    try:
        files, size = make_dataset(data, options.size_mb)
        print(f"test folder: {files} files, {size / MB:.0f} MB (workdir {workdir})", flush=True)
        moto = start_moto_server(workdir)
        s3 = moto.client()
        bucket = moto.create_bucket("bench")
        head, address = start_ray_head(workdir, num_cpus=2)
        print(f"moto at {moto.endpoint_url}, Ray head at {address}", flush=True)

        s3_env = {**base, **moto.env(bucket, "spell"), "SPELLRAY_HOME": str(workdir / "home-s3"),
                  "SPELLRAY_RAY_ADDRESS": address}
        local_env = {**base, "SPELLRAY_HOME": str(workdir / "home-local"),
                     "SPELLRAY_RAY_ADDRESS": address}
        local_storage = workdir / "home-local" / "storage"
        for env in (s3_env, local_env):
            homes.append(env)  # stop it in `finally` even if start fails halfway
            spell(["server", "start"], env)

        times: dict[str, list[float]] = {name: [] for name in (
            "boto3 upload_file", "spell upload (S3)", "boto3 download_file", "spell cp (S3)",
            "copytree in", "spell upload (local)", "copytree out", "spell cp (local)")}
        mounts: dict[str, list[float]] = {"first mount (S3)": [], "cached mount (S3)": [],
                                          "mount (local)": []}
        mount_walls: dict[str, list[float]] = {name: [] for name in mounts}
        listings: dict[str, list[float]] = {name: [] for name in mounts}

        def s3_record(run_id: int) -> dict[str, Any]:
            key = f"spell/runs/{run_id}/.spell/run.json"
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

        def local_record(run_id: int) -> dict[str, Any]:
            return json.loads((local_storage / f"runs/{run_id}/.spell/run.json").read_text())

        if options.mounts_only:
            for env in (s3_env, local_env):
                spell(["upload", str(data), "-n", "bench"], env)
        for r in range(1, options.rounds + 1):
            name = "bench" if options.mounts_only else f"bench-r{r}"
            out = workdir / f"out-r{r}"
            # Each pair runs baseline-first on odd rounds, spellray-first on even ones.
            flip = r % 2 == 0

            def boto3_upload(r: int = r) -> None:
                for rel in local_files(data):
                    s3.upload_file(str(data / rel), bucket, f"boto3-r{r}/{rel}")

            def boto3_download(r: int = r, out: Path = out) -> None:
                for rel in s3_sizes(s3, bucket, f"boto3-r{r}"):
                    target = out / "boto3" / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, f"boto3-r{r}/{rel}", str(target))

            pairs: list[tuple[str, Callable[[], object], str, Callable[[], object]]] = [
                ("boto3 upload_file", boto3_upload, "spell upload (S3)",
                 lambda name=name: spell(["upload", str(data), "-n", name], s3_env)),
                ("boto3 download_file", boto3_download, "spell cp (S3)",
                 lambda name=name, out=out: spell(["cp", f"uploads/{name}",
                                                   str(out / "spell-s3")], s3_env)),
                ("copytree in", lambda out=out: shutil.copytree(data, out / "copytree-in"),
                 "spell upload (local)",
                 lambda name=name: spell(["upload", str(data), "-n", name], local_env)),
                ("copytree out",
                 lambda name=name, out=out: shutil.copytree(local_storage / "uploads" / name,
                                                            out / "copytree-out"),
                 "spell cp (local)",
                 lambda name=name, out=out: spell(["cp", f"uploads/{name}",
                                                   str(out / "spell-local")], local_env)),
            ]
            for base_name, base_fn, spell_name, spell_fn in [] if options.mounts_only else pairs:
                order = [(spell_name, spell_fn), (base_name, base_fn)] if flip else \
                    [(base_name, base_fn), (spell_name, spell_fn)]
                for label, fn in order:
                    elapsed = timed(fn)
                    times[label].append(elapsed)
                    print(f"  round {r}: {label:<22} {elapsed:8.2f} s {rate(size, elapsed)}",
                          flush=True)

            if not options.mounts_only:  # checks after the timing, outside it
                check_s3_tree(data, s3, bucket, f"boto3-r{r}", "boto3 upload_file")
                check_s3_tree(data, s3, bucket, f"spell/uploads/{name}", "spell upload (S3)")
                check_same_tree(data, out / "boto3", "boto3 download_file")
                check_same_tree(data, out / "spell-s3" / name, "spell cp (S3)")
                check_same_tree(data, local_storage / "uploads" / name, "spell upload (local)")
                check_same_tree(data, out / "copytree-in", "copytree in")
                check_same_tree(data, out / "copytree-out", "copytree out")
                check_same_tree(data, out / "spell-local" / name, "spell cp (local)")
                shutil.rmtree(out)  # 2+ GB per round otherwise

            # A cold node cache for the first mount, whatever earlier rounds left.
            shutil.rmtree(cache_dir, ignore_errors=True)
            for label, env, record in (("first mount (S3)", s3_env, s3_record),
                                       ("cached mount (S3)", s3_env, s3_record),
                                       ("mount (local)", local_env, local_record)):
                seconds, listing, wall, downloaded = mount_run(env, project,
                                                               f"uploads/{name}", record)
                mounts[label].append(seconds)
                mount_walls[label].append(wall)
                listings[label].append(listing)
                print(f"  round {r}: {label:<22} {seconds:8.3f} s in the runner, "
                      f"{listing:.3f} s of it listing "
                      f"({downloaded / MB:.0f} MB downloaded; spell run {wall:.1f} s)",
                      flush=True)
            if not any(cache_dir.rglob("*")):
                raise RuntimeError(f"the runner did not cache in {cache_dir}: the first/cached "
                                   "mount figures would not mean what they say")

        mount_median = {name: statistics.median(values) for name, values in mounts.items()}
        print()
        print(f"{files} files, {size / MB:.0f} MB; medians of {options.rounds} round(s)")
        for name, seconds in mount_median.items():
            print(f"{name:<22} {seconds:8.3f} s {rate(size, seconds)}   (listing "
                  f"{statistics.median(listings[name]):.3f} s; spell run wall "
                  f"{statistics.median(mount_walls[name]):.1f} s)")
        cached = mount_median["cached mount (S3)"] / mount_median["first mount (S3)"]
        if options.mounts_only:
            print(f"(benchmark wall time {time.perf_counter() - began:.0f} s; target: "
                  f"cached mount < 5% of first)")
            print(f"cached mount / first mount: {cached:.1%}")
        else:
            print_copy_figures(times, size, mount_median, began, cached)
        succeeded = True
    finally:
        for env in homes:
            subprocess.run([*SPELL_CLI, "server", "stop"], env=env, capture_output=True,
                           timeout=60, check=False)
        if head is not None:
            stop_process_group(head, timeout=RAY_STOP_GRACE)
        if moto is not None:
            moto.stop()
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:  # keep the server, Ray and moto logs for whoever debugs the failure
            shutil.rmtree(data, ignore_errors=True)
            print(f"logs kept in {workdir}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Latency and throughput of a spellray model server against the same predictor deployed as
a raw Ray Serve application, on one private cluster, under the same load.

Usage: python benchmarks/serve_latency.py [--requests 2000] [--concurrency 8] [--rounds 3]

Trains a small digits model (examples/train.py's classifier), then serves it twice with
examples/predictor.py: as a raw Serve deployment made with `serve.run` in this process (a
plain async ``__call__``: JSON in, predict, JSON out), and as `spell server serve` (token
check, the same predictor). Each round sends a fixed number of requests from one concurrent
httpx client to each, alternately, after a warm-up. The last line is the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from private_cluster import SPELL_CLI, free_port, start_ray_head_with_gcs, tear_down

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WARMUP = 200


def train_model(folder: Path) -> list[list[float]]:
    """examples/train.py's model, saved as it saves it; returns one request's images."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier

    digits = load_digits()
    model = SGDClassifier(random_state=0).fit(digits.data / 16.0, digits.target)
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    return np.asarray(digits.data[:4]).tolist()


def deploy_raw(model_dir: Path, port: int) -> str:
    from ray import serve
    from starlette.requests import Request

    @serve.deployment(ray_actor_options={"num_cpus": 1})
    class RawPredictor:
        def __init__(self, code_dir: str, model_path: str) -> None:
            from spellray.serve.predictor import load_module

            module = load_module(Path(code_dir), "predictor.py")
            self.predictor = module.DigitsPredictor(model_path)

        async def __call__(self, request: Request) -> Any:
            return self.predictor.predict(await request.json())

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(RawPredictor.bind(str(EXAMPLES), str(model_dir)), name="raw",
              route_prefix="/raw")
    return f"http://127.0.0.1:{port}/raw"


def spell(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([*SPELL_CLI, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"spell {' '.join(args)}: {done.stderr}")
    return done.stdout


def deploy_spellray(env: dict[str, str], model_dir: Path, workdir: Path) -> tuple[str, str]:
    project = workdir / "project"
    project.mkdir()
    shutil.copy(EXAMPLES / "predictor.py", project / "predictor.py")
    spell(env, "server", "start")
    spell(env, "upload", str(model_dir), "-n", "bench-model")
    spell(env, "model", "create", "bench", "uploads/bench-model")
    spell(env, "server", "serve", "bench:v1", "predictor.py", cwd=project)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        described = {line.split(None, 1)[0]: line.split(None, 1)[1]
                     for line in spell(env, "server", "describe", "bench").splitlines()}
        if described["status"] == "running":
            return described["endpoint"], described["token"]
        if described["status"] == "failed":
            raise RuntimeError(spell(env, "server", "logs", "bench"))
        time.sleep(0.5)
    raise RuntimeError("the spellray model server did not become ready")


async def load(url: str, headers: dict[str, str], body: bytes, requests: int,
               concurrency: int) -> tuple[list[float], float]:
    """``requests`` POSTs from ``concurrency`` workers; (latencies, seconds in all)."""
    latencies: list[float] = []
    left = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers={**headers, "Content-Type": "application/json"},
                                 limits=limits, timeout=60) as client:
        async def worker() -> None:
            for _ in left:
                started = time.perf_counter()
                response = await client.post(url, content=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: "
                                       f"{response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    import ray

    workdir = Path(tempfile.mkdtemp(prefix="spellray-bench-serve-"))
    head, address, gcs = start_ray_head_with_gcs(workdir, num_cpus=4)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env.update(SPELLRAY_HOME=str(workdir / "home"), SPELLRAY_RAY_ADDRESS=address,
               SPELLRAY_SERVE_PORT=str(port))
    try:
        model_dir = workdir / "model"
        body = json.dumps({"images": train_model(model_dir)}).encode()
        ray.init(address=gcs, logging_level="ERROR", log_to_driver=False)
        targets = {"raw Serve": (deploy_raw(model_dir, port), {})}
        endpoint, token = deploy_spellray(env, model_dir, workdir)
        targets["spellray"] = (endpoint, {"Authorization": f"Bearer {token}"})
        results: dict[str, list[tuple[list[float], float]]] = {name: [] for name in targets}
        for url, headers in targets.values():
            asyncio.run(load(url, headers, body, WARMUP, options.concurrency))
        for round_no in range(options.rounds):
            order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
            for name in order:
                url, headers = targets[name]
                results[name].append(asyncio.run(
                    load(url, headers, body, options.requests, options.concurrency)))
        figures = {}
        for name, rounds in results.items():
            latencies = [x for lat, _ in rounds for x in lat]
            throughput = statistics.median(len(lat) / secs for lat, secs in rounds)
            figures[name] = (pct(latencies, 50), pct(latencies, 99), throughput)
            print(f"{name:<10} p50 {figures[name][0] * 1000:6.2f} ms   p99 "
                  f"{figures[name][1] * 1000:6.2f} ms   {throughput:7.1f} req/s   "
                  f"({options.rounds} x {options.requests} requests, "
                  f"{options.concurrency} at a time)")
        raw, ours = figures["raw Serve"], figures["spellray"]
        print(f"spellray / raw Serve: p50 {ours[0] / raw[0]:.2f}x (target <= 1.1x), "
              f"p99 {ours[1] / raw[1]:.2f}x, throughput {ours[2] / raw[2]:.2f}x "
              f"(target >= 0.9x)")
    finally:
        ray.shutdown()
        tear_down(env, head, workdir)


if __name__ == "__main__":
    main()

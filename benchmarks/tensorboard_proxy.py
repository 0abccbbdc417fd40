"""TensorBoard's first page load through the spellray server's proxy (session cookie, gate,
reverse proxy) against the same TensorBoard served directly, in the same process run.

A first load is what a browser does on opening the link: a fresh connection, the page, its
script (the big one, gzip-compressed as a browser asks), and the first data calls
(environment, plugins, runs). Rounds alternate direct and proxied; each side's median is
printed, the proxied / direct ratio last (target <= 1.2x).

The server runs without Ray (none is needed: the run is a row made here, its event files
written into storage with TensorBoard's own writer).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from spellray.client import Client
from spellray.ports import free_port
from spellray.server import db
from spellray.storage.store import Storage

FIRST_CALLS = ("data/environment", "data/plugins_listing", "data/runs")


def wait(predicate: Callable[[], object], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPELLRAY_")}
    env.update(SPELLRAY_HOME=str(home), SPELLRAY_RAY_ADDRESS=f"http://127.0.0.1:{free_port()}")
    log = (home / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "spellray.server", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            token = (home / "token").read_text().strip()
            return httpx.get(f"{url}/api/info", headers={"Authorization": f"Bearer {token}"},
                             timeout=2).status_code == 200
        except (OSError, httpx.TransportError):
            return False

    wait(up, "the spellray server")
    return process, url, (home / "token").read_text().strip()


def add_run_with_events(home: Path, steps: int) -> int:
    sessions = db.make_session_factory(db.make_engine(f"sqlite:///{home / 'spellray.db'}"))
    with sessions() as session:
        run = db.Run(command="python train.py", machine_type="cpu", status="complete",
                     spec={"tensorboard_dir": "tb"})
        session.add(run)
        session.commit()
        run_id = run.id
    local = home / "events"
    writer = EventFileWriter(str(local))
    for step in range(steps):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag="loss", simple_value=1.0 / (step + 1))])
        writer.add_event(event_pb2.Event(step=step, wall_time=float(step), summary=summary))
    writer.close()
    storage = Storage(str(home / "storage"))
    for file in local.iterdir():
        storage.upload_file(file, f"runs/{run_id}/tb/{file.name}")
    return run_id


def direct_port(set_path: str) -> int:
    """Where the server's TensorBoard for ``set_path`` listens (found from its process)."""
    prefix = set_path.rstrip("/")
    process = next(p for p in psutil.process_iter(["cmdline"])
                   if prefix in (p.info["cmdline"] or []))
    return next(c.laddr.port for c in process.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN)


def first_load(base: str, set_path: str, cookies: httpx.Cookies | None) -> float:
    """Seconds for a browser's first load of the page, on a fresh connection."""
    start = time.perf_counter()
    with httpx.Client(base_url=base, cookies=cookies, timeout=60, trust_env=False,
                      headers={"Accept-Encoding": "gzip"}) as browser:
        page = browser.get(set_path)
        page.raise_for_status()
        script = page.text.split('src="index.js')[1].split('"')[0]
        browser.get(f"{set_path}index.js{script}").raise_for_status()
        for call in FIRST_CALLS:
            browser.get(f"{set_path}{call}").raise_for_status()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="measured loads per side")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="tb-proxy-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        server, url, token = start_server(home)
        try:
            run_id = add_run_with_events(home, steps=1000)
            client = Client(url, token)
            board = client.tensorboard.open([run_id])
            login = httpx.get(client.tensorboard.login_url(board), timeout=30)
            cookies = login.cookies
            direct = f"http://127.0.0.1:{direct_port(board.path)}"
            for _ in range(3):  # warm both (TensorBoard's first answers load its plugins)
                first_load(direct, board.path, None)
                first_load(url, board.path, cookies)
            times: dict[str, list[float]] = {"direct": [], "proxied": []}
            for _ in range(rounds):
                times["direct"].append(first_load(direct, board.path, None))
                times["proxied"].append(first_load(url, board.path, cookies))
        finally:
            server.terminate()
            server.wait(timeout=30)
    direct_ms = statistics.median(times["direct"]) * 1000
    proxied_ms = statistics.median(times["proxied"]) * 1000
    print(f"first page load, TensorBoard direct:   median {direct_ms:7.1f} ms ({rounds} loads)")
    print(f"first page load, through the proxy:    median {proxied_ms:7.1f} ms ({rounds} loads)")
    print(f"proxied / direct: {proxied_ms / direct_ms:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()

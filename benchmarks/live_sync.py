"""What runner/live_sync.py costs: a pass over a folder where nothing changed (the price of
every interval of a quiet run), and a training-like loop that writes TensorBoard scalars
with live sync every 0.5 s against the same loop without it, interleaved in this process.

The loop does fixed CPU work per step (the user's training) and writes each step's scalar
with TensorBoard's own writer, flushing every 50 steps. Printed: the quiet pass over 1000
files, then the loop's median seconds each way, then the ratio (with / without) last.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from spellray.runner.live_sync import LiveSync
from spellray.storage.store import Storage


def quiet_pass_ms(tmp: Path, files: int) -> float:
    root = tmp / "quiet"
    for i in range(files):
        folder = root / "tb" / f"d{i % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(b"x" * 100)
    sync = LiveSync(root, "tb", Storage(str(tmp / "quiet-store")), "runs/1", interval=3600)
    sync.start()
    sync.sync()  # every file copied once
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        assert sync.sync() == []
    sync.close(final=False)
    return (time.perf_counter() - started) / rounds * 1000


def train(folder: Path, steps: int) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    value = 0.0
    for step in range(steps):
        for i in range(2000):  # the step's fixed work
            value = (value * 1.000001 + i) % 1000.0
        writer.add_event(Event(step=step, summary=Summary(
            value=[Summary.Value(tag="loss", simple_value=value)])))
        if step % 50 == 0:
            writer.flush()
    writer.close()


def timed_loop(tmp: Path, name: str, steps: int, interval: float | None) -> float:
    root = tmp / name
    root.mkdir()
    sync = None
    if interval is not None:
        sync = LiveSync(root, "tb", Storage(str(tmp / f"{name}-store")), "runs/1", interval)
        sync.start()
    started = time.perf_counter()
    train(root / "tb", steps)
    if sync is not None:
        sync.close()  # the last pass is part of the run's cost
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="live-sync-bench-") as name:
        tmp = Path(name)
        print(f"quiet pass over {args.files} files: {quiet_pass_ms(tmp, args.files):.2f} ms")
        timed_loop(tmp, "warm-up", args.steps // 10, None)
        with_sync, without = [], []
        for i in range(args.rounds):  # interleaved, each first in turn: drift hits both
            pair = [("off", None), ("on", 0.5)][:: 1 if i % 2 else -1]
            for kind, interval in pair:
                seconds = timed_loop(tmp, f"{kind}-{i}", args.steps, interval)
                (without if interval is None else with_sync).append(seconds)
        on, off = statistics.median(with_sync), statistics.median(without)
        print(f"loop without live sync: {off:.3f} s (median of {args.rounds})")
        print(f"loop with live sync every 0.5 s: {on:.3f} s")
        print(f"live sync overhead ratio: {on / off:.3f}x")


if __name__ == "__main__":
    main()

"""The in-job wrapper: fetch the code, run the user's command, save the log and outputs.

It needs no server to finish a run: status reports are retried in the background, and the
result, the log and the outputs go straight to storage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from spellray.runner.log_sink import LogSink
from spellray.runner.metrics_forwarder import Listener, MetricsForwarder
from spellray.runner.reporter import Reporter
from spellray.runner.tracking import TrackingSetup
from spellray.storage.code_package import changed_files, file_crc32, unpack
from spellray.storage.paths import join
from spellray.storage.store import Storage

if TYPE_CHECKING:
    from spellray.runner.distributed import DistributedLaunch

# Seconds the user's command gets between SIGTERM and SIGKILL when the run is stopped.
TERM_GRACE = 10.0
REPORT_DRAIN_SECONDS = 10.0


class Runner:
    def __init__(self, run_id: int, storage: Storage) -> None:
        self.run_id = run_id
        self.storage = storage
        self.token = os.environ.get("SPELLRAY_TOKEN", "")
        self.reporter = Reporter(os.environ.get("SPELLRAY_SERVER_URL", ""), self.token, run_id)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"spellray-run-{run_id}-"))
        self.spell_dir = join("runs", run_id, ".spell")
        self.log_copy = self.workdir.with_name(f"{self.workdir.name}.log")
        self.log = LogSink(storage, f"{self.spell_dir}/log", self.log_copy)
        # Where send_metric writes: beside the working folder, so it never becomes an output.
        self.metrics_file = self.workdir.with_name(f"{self.workdir.name}.metrics.jsonl")
        # Each is called with every metric the command sends ({"name", "value", "index",
        # "time"}) as it arrives, from a background thread. Append before run().
        self.metric_listeners: list[Listener] = []
        self.terminated = False
        self.child: subprocess.Popen[bytes] | None = None
        # run.json as the server wrote it; the runner adds its result and writes it back.
        self.record: dict = {"id": run_id}
        # What -m materialized: kept out of the outputs, and reported in the result.
        self.mount_paths: set[str] = set()
        self.mounted: list[dict] = []
        self.outside_mounts: list[Path] = []  # absolute -m paths, removed when the run ends
        # Why the runner itself stopped the command (--timeout, --stop-condition, request_stop).
        self.stop_reason: str | None = None
        # --distributed N: the ranks' launcher (runner/distributed.py), and why it failed.
        self.distributed: DistributedLaunch | None = None
        self.failure_reason: str | None = None

    # -- signals --------------------------------------------------------------------------
    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        """Ray stops a job with SIGTERM (spell kill and spell stop alike)."""
        self.terminated = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, signal.SIGTERM)

    def request_stop(self, reason: str) -> None:
        """End the command as `spell stop` does (outputs saved); the run ends `stopped` with
        ``reason``. For --timeout, --stop-condition, and a Tune trial that is stopped. Once
        the command has ended there is nothing to stop: the run keeps its own outcome."""
        if self.child is not None and self.child.poll() is not None:
            return
        self.stop_reason = self.stop_reason or reason
        self._on_sigterm(signal.SIGTERM, None)

    def _stop_conditions_listener(self) -> Listener | None:
        from spellray.schemas.stop_conditions import parse

        conditions = [parse(text) for text in self.record.get("stop_conditions") or []]

        def check(metric: dict) -> None:
            for condition in conditions:
                if condition.met(metric["name"], metric["value"], metric["index"]):
                    self.request_stop(f"stop condition met: {condition} "
                                      f"at index {metric['index']}")

        return check if conditions else None

    # -- steps ----------------------------------------------------------------------------
    def run(self, handle_signals: bool = True) -> int:
        """Run the whole run; the exit code for the runner's process. ``handle_signals``:
        take SIGTERM (Ray's stop) in this process; only possible in its main thread."""
        if handle_signals:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        self.reporter.send("building")
        tracking = TrackingSetup(self.reporter.api.copy(), self.token)  # while code comes
        self.record = json.loads(self.storage.read_bytes(f"{self.spell_dir}/run.json"))
        manifest = self._fetch_code()
        if packages := self.record.get("apt"):
            from spellray.errors import SpellrayError
            from spellray.runner import apt

            try:
                apt.install(packages, self.log.line)
            except SpellrayError as exc:  # the environment, not the runner, failed
                self.log.line(f"spellray: {exc.message}")
                return self._write_result("failed", None, f"build failed: apt: {exc.message}")
        self._mount(self.record.get("mounts") or [])
        env = self._metrics_env(tracking)
        if count := self.record.get("distributed"):
            from spellray.runner.distributed import DistributedLaunch

            self.distributed = DistributedLaunch(self, count, self.record["machine"])
            if failure := self.distributed.reserve():
                self.log.line(f"spellray: {failure}")
                return self._write_result("failed", None, failure)
        if self.terminated:
            return self._finish(None, manifest)
        self.reporter.send("running")
        timer = None
        if minutes := self.record.get("timeout_minutes"):
            timer = threading.Timer(minutes * 60, self.request_stop,
                                    [f"timed out after {minutes:g} minute(s) (--timeout)"])
            timer.daemon = True
            timer.start()
        forwarder = MetricsForwarder(self.metrics_file, self.reporter.api.copy(),
                                     self.metric_listeners)
        try:
            exit_code = self._run_command(self.record["command"], env)
        finally:
            if timer is not None:
                timer.cancel()
            # Before the final report: that revokes the run's token.
            forwarder.close(REPORT_DRAIN_SECONDS)
        return self._finish(exit_code, manifest)

    def _metrics_env(self, tracking: TrackingSetup) -> dict[str, str]:
        """The command's variables for send_metric and MLflow; --stop-condition listens."""
        if check := self._stop_conditions_listener():
            self.metric_listeners.append(check)
        self.metrics_file.touch()
        env = tracking.env(self.metrics_file)
        if tracking.note:
            self.log.line(f"spellray: MLflow variables not set: {tracking.note}")
        return env

    def _fetch_code(self) -> dict[str, int]:
        """Put the run's code in its working folder; return the manifest (name -> CRC32) of
        what was there before the command, so only new or changed files become outputs."""
        if git := self.record.get("git"):
            from spellray.storage.git_source import fetch_commit

            fetch_commit(git["url"], git["commit"], self.workdir, self.log.line)
            return {p.relative_to(self.workdir).as_posix(): file_crc32(p)
                    for p in self.workdir.rglob("*") if p.is_file() and not p.is_symlink()}
        if code := self.record.get("code"):
            data = self.storage.read_bytes(join("code", f"{code['sha256']}.zip"))
            return unpack(data, self.workdir)
        return {}

    def _mount(self, mounts: list[dict]) -> None:
        """Materialize each `-m` resource before the command starts (local storage: links
        into it; object stores: through this node's cache)."""
        from spellray.settings import get_settings
        from spellray.storage.cache import NodeCache
        from spellray.storage.mounts import materialize

        if not mounts:
            return
        settings = get_settings()
        cache = NodeCache(settings.resolved_cache_dir(), settings.cache_limit_bytes)
        for mount in mounts:
            dest = Path(mount["path"])
            result = materialize(self.storage, mount["resolved"],
                                 dest if dest.is_absolute() else self.workdir / dest, cache)
            if dest.is_absolute():
                self.outside_mounts.append(dest)
            else:
                self.mount_paths.add(dest.as_posix())
            self.mounted.append({"resource": mount["resource"], "path": mount["path"],
                                 "files": result.files, "bytes": result.bytes,
                                 "bytes_downloaded": result.bytes_downloaded,
                                 "seconds": round(result.seconds, 4),
                                 "listing_seconds": round(result.listing_seconds, 4)})
            self.log.line(f"spellray: mounted {mount['resource']} at {mount['path']} "
                          f"({result.files} files, {result.bytes_downloaded} bytes downloaded "
                          f"in {result.seconds:.2f} s)")

    def _run_command(self, command: str, env: dict[str, str]) -> int:
        if self.distributed is not None:
            return self.distributed.run(command, env)
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        self.child = subprocess.Popen(
            [shell, "-c", command], cwd=self.workdir, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env},
        )
        if self.terminated:  # stopped while it was being started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, signal.SIGTERM)
        # If this runner dies (SIGKILL), nothing else would end the user's processes: the
        # same watcher Ray's job supervisor uses for its own entrypoint.
        watcher = subprocess.Popen(
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"kill -9 -{self.child.pid} 2>/dev/null",
            shell=True, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        assert self.child.stdout is not None
        for line in iter(self.child.stdout.readline, b""):
            self.log.write(line)
        try:
            code = self.child.wait(timeout=TERM_GRACE if self.terminated else None)
        except subprocess.TimeoutExpired:
            os.killpg(self.child.pid, signal.SIGKILL)
            code = self.child.wait()
        watcher.kill()
        return 128 - code if code < 0 else code  # shell convention for "killed by signal"

    def _finish(self, exit_code: int | None, manifest: dict[str, int]) -> int:
        if self.terminated and self.reporter.current_status() in ("killed", "ended"):
            # `spell kill`: end now, outputs not saved; the log is kept.
            return self._write_result("killed", exit_code, "killed by user")
        self.reporter.send("saving")
        saved = self._save_outputs(manifest)
        if self.stop_reason:
            status, reason = "stopped", self.stop_reason
        elif self.terminated:
            status, reason = "stopped", "stopped by user"
        elif exit_code == 0:
            status, reason = "complete", None
        else:
            status, reason = "failed", self.failure_reason or \
                f"the command exited with code {exit_code}"
        return self._write_result(status, exit_code, reason, saved)

    def _save_outputs(self, manifest: dict[str, int]) -> list[str]:
        if self.distributed is not None:
            return self.distributed.save_outputs()
        outputs = changed_files(self.workdir, manifest, skip=self.mount_paths)
        for rel in outputs:
            self.storage.upload_file(self.workdir / rel, join("runs", self.run_id, rel))
        return outputs

    def _write_result(self, status: str, exit_code: int | None, reason: str | None,
                      outputs: list[str] | None = None) -> int:
        if self.distributed is not None:
            self.distributed.close()
        self.log.close()
        self.record["result"] = {"status": status, "exit_code": exit_code, "reason": reason,
                            "outputs": outputs or [], "mounts": self.mounted,
                            "ended_at": time.time()}
        self.storage.write_bytes(f"{self.spell_dir}/run.json",
                                 json.dumps(self.record, indent=2).encode())
        if self.metrics_file.exists() and self.metrics_file.stat().st_size:
            self.storage.upload_file(self.metrics_file, f"{self.spell_dir}/metrics.jsonl")
        self.reporter.send(status, reason, exit_code)
        self.reporter.close(REPORT_DRAIN_SECONDS)
        shutil.rmtree(self.workdir, ignore_errors=True)
        for dest in self.outside_mounts:
            if dest.is_symlink() or dest.is_file():
                dest.unlink(missing_ok=True)
            else:
                shutil.rmtree(dest, ignore_errors=True)
        self.log_copy.unlink(missing_ok=True)
        self.metrics_file.unlink(missing_ok=True)
        return 0 if status == "complete" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spellray.runner")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args(argv)
    from spellray.settings import get_settings

    runner = Runner(args.run_id, Storage(args.storage, get_settings()))
    try:
        return runner.run()
    except Exception as exc:
        # Anything that goes wrong around the user's command (code missing, storage down)
        # still ends the run, with the reason in its log and status.
        reason = f"the runner failed: {type(exc).__name__}: {exc}"
        try:
            runner.log.line(f"spellray: {reason}")
            return runner._write_result("failed", None, reason)
        except Exception:
            print(reason, file=sys.stderr)
            runner.reporter.send("failed", reason)
            runner.reporter.close(REPORT_DRAIN_SECONDS)
            return 1

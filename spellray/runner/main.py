"""The in-job wrapper: prepare the run's working folder, launch the user's command (on this
node, or as --distributed ranks: runner/launch/), save the log and outputs, report.

It needs no server to finish a run: status reports are retried in the background, and the
result, the log and the outputs go straight to storage.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from spellray.errors import StorageUnreachable
from spellray.runner.launch.single import SingleLaunch
from spellray.runner.log_sink import LogSink
from spellray.runner.metrics_forwarder import Listener, MetricsForwarder
from spellray.runner.reporter import Reporter
from spellray.runner.stats_recorder import StatsRecorder
from spellray.runner.tracking import TrackingSetup
from spellray.runner.workdir import WorkDir
from spellray.storage.paths import STATS_FILE, UNDELIVERED_METRICS_FILE, join
from spellray.storage.store import Storage

if TYPE_CHECKING:
    from spellray.runner.jupyter import JupyterServer
    from spellray.runner.launch import Launch
    from spellray.runner.preemption import NoticeWatch

REPORT_DRAIN_SECONDS = 10.0


class Runner:
    def __init__(self, run_id: int, storage: Storage, record: dict | None = None,
                 tracking: dict[str, str] | None = None) -> None:
        """``record`` and ``tracking``: run.json and the MLflow run, when the server gave
        them with the run (a search's trial, made `building` by the server as it starts);
        otherwise read from storage and asked of the server."""
        self.run_id = run_id
        self.storage = storage
        self.token = os.environ.get("SPELLRAY_TOKEN", "")
        self.reporter = Reporter(os.environ.get("SPELLRAY_SERVER_URL", ""), self.token, run_id)
        self.spell_dir = join("runs", run_id, ".spell")
        folder = Path(tempfile.mkdtemp(prefix=f"spellray-run-{run_id}-"))
        self.log_copy = folder.with_name(f"{folder.name}.log")
        self.log = LogSink(storage, f"{self.spell_dir}/log", self.log_copy)
        # The run's folder on this node, prepared for every run: a single run's command runs
        # in it; a distributed run's ranks have their own, so here it checks the code and the
        # mounts before the cluster is reserved, and measures the mounts for the result.
        self.workdir = WorkDir(folder, storage, run_id, self.log)
        # Each is called with every metric the command sends ({"name", "value", "index",
        # "time"}) as it arrives, from a background thread. Append before run().
        self.metric_listeners: list[Listener] = []
        # The run was stopped (Ray's SIGTERM, request_stop): it ends stopped or killed,
        # whatever its command did. A plain flag: the SIGTERM handler may take no lock.
        self.terminated = False
        # run.json as the server wrote it; the runner adds its result and writes it back.
        self.given_record = record
        self.record: dict = {"id": run_id}
        self.given_tracking = tracking
        # Why the runner itself stopped the command (--timeout, --stop-condition, request_stop).
        self.stop_reason: str | None = None
        self.undelivered_metrics: list[dict] = []
        # How the command runs (runner/launch/): chosen once run.json is read.
        self.launch: Launch | None = None
        # A workspace's run: Jupyter is the command (runner/jupyter.py).
        self.jupyter: JupyterServer | None = None
        self.workspace_manifest: dict[str, int] = {}
        # The cloud's interruption notice, once it came (runner/preemption.py).
        self.notice: str | None = None

    # -- signals --------------------------------------------------------------------------
    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        """Ray stops a job with SIGTERM (spell kill and spell stop alike)."""
        self.terminated = True
        if self.launch is not None:
            self.launch.stop()

    def request_stop(self, reason: str) -> None:
        """End the command as `spell stop` does (outputs saved); the run ends `stopped` with
        ``reason``. For --timeout, --stop-condition, and a Tune trial that is stopped. Once
        the command has ended there is nothing to stop: the run keeps its own outcome."""
        if self.launch is not None and self.launch.ended():
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
        if self.given_record is None:
            self.reporter.send("building")
        # While the code comes, if the server has yet to say.
        tracking = TrackingSetup(self.reporter.api.copy(), self.token, self.given_tracking)
        self.record = self.given_record or json.loads(
            self.storage.read_bytes(f"{self.spell_dir}/run.json"))
        self.launch = self._pick_launch()
        self.workdir.live_folder = self.record.get("tensorboard_dir")
        workspace = self.record.get("workspace")
        if workspace and workspace.get("restore"):
            from spellray.runner import workspace_folder

            self.workspace_manifest = workspace_folder.restore(
                self.storage, workspace["folder"], self.workdir.path)
            self.workdir.manifest = dict(self.workspace_manifest)
        else:
            self.workdir.fetch_code(self.record)
            if self.record.get("resumed_from") and not self.record.get("distributed"):
                self.workdir.restore_outputs(self.record["resumed_from"])
        # Auto-resume: outputs saved as the run goes (a distributed run's rank 0 does it).
        self.workdir.sync_outputs = bool(self.record.get("auto_resume")) and \
            not self.record.get("distributed")
        if packages := self.record.get("apt"):
            from spellray.errors import SpellrayError
            from spellray.runner import apt

            try:
                apt.install(packages, self.log.line)
            except SpellrayError as exc:  # the environment, not the runner, failed
                self.log.line(f"spellray: {exc.message}")
                return self._write_result("failed", None, f"build failed: apt: {exc.message}")
        self.workdir.mount(self.record.get("mounts") or [])
        env = self._metrics_env(tracking)
        if failure := self.launch.reserve():
            self.log.line(f"spellray: {failure}")
            return self._write_result("failed", None, failure)
        if self.terminated:
            return self._finish(None)
        self.reporter.send("running")
        timer = None
        if minutes := self.record.get("timeout_minutes"):
            timer = threading.Timer(minutes * 60, self.request_stop,
                                    [f"timed out after {minutes:g} minute(s) (--timeout)"])
            timer.daemon = True
            timer.start()
        forwarder = MetricsForwarder(self.workdir.metrics_file, self.reporter.api.copy(),
                                     self.metric_listeners)
        stats = self._record_stats(forwarder)
        command = self.record["command"]
        if workspace:
            command, env = self._start_jupyter(workspace, env)
        watch = self._watch_notice()
        try:
            exit_code = self.launch.run(command, env)
        finally:
            if watch is not None:
                watch.close()
            if timer is not None:
                timer.cancel()
            if stats is not None:  # whole in storage before the run's status says it ended
                stats.close()
            # Before the final report: that revokes the run's token.
            self.undelivered_metrics = forwarder.close(REPORT_DRAIN_SECONDS)
        return self._finish(exit_code)

    def _watch_notice(self) -> NoticeWatch | None:
        """On a spot machine type (or wherever SPELLRAY_METADATA_URL is set), watch the
        instance metadata for the cloud's interruption notice."""
        from spellray.runner.preemption import DEFAULT_METADATA_URL, NoticeWatch
        from spellray.settings import get_settings

        settings = get_settings()
        if settings.metadata_url is None and not self.record.get("spot"):
            return None
        return NoticeWatch(settings.metadata_url or DEFAULT_METADATA_URL,
                           settings.metadata_poll_seconds, self._on_notice).start()

    def _on_notice(self, said: str) -> None:
        """The machine is being taken back: save what the command made so far at once (a
        resumed run starts from it), then SIGTERM the command (a script can checkpoint on
        it); the run ends `interrupted` and its node is drained (``_finish``)."""
        self.log.line(f"spellray: interruption notice ({said}): saving outputs and stopping "
                      "the command")
        self.notice = (f"the {self.record.get('machine_type')} machine it ran on is being "
                       f"taken back ({said})")
        if self.workdir.live is not None:
            self.workdir.live.sync()
        self._on_sigterm(signal.SIGTERM, None)

    def _start_jupyter(self, workspace: dict, env: dict[str, str]) -> tuple[str, dict[str, str]]:
        """A workspace's command: Jupyter, announced to the server once it answers."""
        from spellray.runner.jupyter import JupyterServer

        self.jupyter = JupyterServer(workspace, self.workdir.path, self.reporter.api.server_url)
        assert self.launch is not None
        launch = self.launch
        self.jupyter.announce(self.reporter.api.copy(),
                              lambda: not launch.ended() and not self.terminated, self.log.line)
        return self.jupyter.command(), {**env, **self.jupyter.env()}

    def _record_stats(self, forwarder: MetricsForwarder) -> StatsRecorder | None:
        """Hardware stats for the command, unless SPELLRAY_STATS_INTERVAL_SECONDS is 0."""
        from spellray.settings import get_settings

        assert self.launch is not None
        interval = get_settings().stats_interval_seconds
        if not interval:
            return None
        recorder = StatsRecorder(self.storage, f"{self.spell_dir}/{STATS_FILE}",
                                 self.log_copy.with_suffix(".stats.jsonl"), forwarder.send)
        self.launch.sample_stats(recorder.record, interval)
        return recorder

    def _pick_launch(self) -> Launch:
        if not self.record.get("distributed"):
            return SingleLaunch(self.workdir)
        from spellray.runner.launch.distributed import DistributedLaunch

        return DistributedLaunch(self.record, self.storage.uri, self.log,
                                 self.workdir.metrics_file, lambda: self.terminated,
                                 self.reporter.send)

    def _metrics_env(self, tracking: TrackingSetup) -> dict[str, str]:
        """The command's variables for send_metric and MLflow; --stop-condition listens."""
        if check := self._stop_conditions_listener():
            self.metric_listeners.append(check)
        self.workdir.metrics_file.touch()
        env = tracking.env(self.workdir.metrics_file)
        if tracking.note:
            self.log.line(f"spellray: MLflow variables not set: {tracking.note}")
        return env

    def _finish(self, exit_code: int | None) -> int:
        if self.terminated and self.reporter.current_status() in ("killed", "ended"):
            # `spell kill`: end now, outputs not saved; the log is kept.
            return self._write_result("killed", exit_code, "killed by user")
        self.reporter.send("saving")
        assert self.launch is not None
        if self.jupyter is not None:
            return self._finish_workspace(exit_code)
        saved = self.launch.save_outputs()
        if self.notice:
            from spellray.runner.preemption import drain_own_node

            # No new work on a machine about to go (the run's own end is unaffected).
            self.log.line(f"spellray: {drain_own_node(self.notice)}")
            return self._write_result("interrupted", exit_code, self.notice, saved)
        if self.stop_reason:
            status, reason = "stopped", self.stop_reason
        elif self.terminated:
            status, reason = "stopped", "stopped by user"
        elif self.launch.interrupted_reason:
            status, reason = "interrupted", self.launch.interrupted_reason
        elif exit_code == 0:
            status, reason = "complete", None
        else:
            status, reason = "failed", self.launch.failure_reason or \
                f"the command exited with code {exit_code}"
        return self._write_result(status, exit_code, reason, saved)

    def _finish_workspace(self, exit_code: int | None) -> int:
        """Save the workspace's folder to storage; the run ends stopped (by the user, or
        idle), or failed with the last lines of Jupyter's log."""
        from spellray.runner import jupyter, workspace_folder

        assert self.jupyter is not None
        spec = self.record["workspace"]
        tail = self.log.tail(4000)
        status, reason = jupyter.ending(exit_code, self.terminated, tail,
                                        int(spec.get("no_activity_timeout") or 0),
                                        self.jupyter.idle_seconds())
        self.jupyter.close()
        sent = workspace_folder.save(self.storage, self.workdir.path, spec["folder"],
                                     self.workspace_manifest, self.workdir.mount_paths)
        self.log.line(f"spellray: saved the workspace to {spec['folder']}/ "
                      f"({len(sent)} files changed)")
        code = self._write_result(status, exit_code, reason)
        return 0 if status == "stopped" else code

    def _write_result(self, status: str, exit_code: int | None, reason: str | None,
                      outputs: list[str] | None = None) -> int:
        if self.launch is not None:
            self.launch.close()
        self.log.close()
        self.record["result"] = {"status": status, "exit_code": exit_code, "reason": reason,
                            "outputs": outputs or [], "mounts": self.workdir.mounted,
                            "ended_at": time.time()}
        if self.undelivered_metrics:  # before the result, which the server acts on
            self.storage.write_bytes(f"{self.spell_dir}/{UNDELIVERED_METRICS_FILE}", "".join(
                json.dumps(metric) + "\n" for metric in self.undelivered_metrics).encode())
        self.storage.write_bytes(f"{self.spell_dir}/run.json",
                                 json.dumps(self.record, indent=2).encode())
        metrics = self.workdir.metrics_file
        if metrics.exists() and metrics.stat().st_size:
            self.storage.upload_file(metrics, f"{self.spell_dir}/metrics.jsonl")
        self.reporter.send(status, reason, exit_code)
        self.reporter.close(REPORT_DRAIN_SECONDS)
        self.workdir.cleanup()
        self.log_copy.unlink(missing_ok=True)
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
        if isinstance(exc, StorageUnreachable):
            # Writing the log and result would wait out the same outage again, twice:
            # say why straight to the server.
            return _report_only(runner, reason)
        try:
            runner.log.line(f"spellray: {reason}")
            return runner._write_result("failed", None, reason)
        except Exception:
            return _report_only(runner, reason)


def _report_only(runner: Runner, reason: str) -> int:
    """End the run failed through the server alone (storage cannot take the result)."""
    print(reason, file=sys.stderr)
    runner.reporter.send("failed", reason)
    runner.reporter.close(REPORT_DRAIN_SECONDS)
    with suppress(Exception):
        runner.workdir.cleanup()
    return 1

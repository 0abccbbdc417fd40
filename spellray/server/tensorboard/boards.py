"""The server's TensorBoards: one `tensorboard` subprocess per set of runs, on a free port of
127.0.0.1 (only the server's proxy reaches it), with ``--path_prefix /tensorboard/<set>`` so
its pages and API work unchanged behind the proxy.

Its logdir is a local mirror holding one folder per run, named by run number (TensorBoard
names runs by folder). A background thread keeps the mirrors fresh while any of a set's runs
is active, and stops a TensorBoard nobody has used for SPELLRAY_TENSORBOARD_IDLE_MINUTES.
Subprocesses rather than TensorBoard in-process: its loaders hold memory and threads per
run set, and a process is the unit that can be stopped whole.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from spellray.errors import InternalError
from spellray.ports import free_port
from spellray.server.tensorboard.mirror import mirror_folder
from spellray.server.tensorboard.run_sets import Resolved, RunSet
from spellray.storage.store import Storage

log = logging.getLogger(__name__)

PREFIX = "/tensorboard"
PID_FILE = "tensorboard.pid"
TICK_SECONDS = 1.0  # how often the keeper looks at idle boards and due refreshes
STOP_GRACE_SECONDS = 5.0


@dataclass
class Board:
    """One running TensorBoard."""

    runs: RunSet
    port: int
    process: subprocess.Popen[bytes]
    logdir: Path
    log_file: Path
    run_ids: list[int]
    active: bool
    last_used: float = field(default_factory=time.monotonic)
    last_sync: float = field(default_factory=time.monotonic)

    @property
    def set_id(self) -> str:
        return self.runs.set_id

    @property
    def path(self) -> str:
        return f"{PREFIX}/{self.set_id}/"

    @property
    def backend(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exited(self) -> str | None:
        """Why the process ended (the end of its log), or None while it runs."""
        if self.process.poll() is None:
            return None
        tail = self.log_file.read_text(errors="replace").strip().splitlines()[-3:]
        return f"exit code {self.process.returncode}: " + " | ".join(tail)


class TensorBoards:
    """Every TensorBoard this server runs, by set id."""

    def __init__(self, storage: Storage, home: Path, resolve: Callable[[RunSet], Resolved],
                 idle_seconds: float, sync_seconds: float) -> None:
        self.storage = storage
        self.root = home / "tensorboard"
        self.resolve = resolve  # the set's runs and folders now (runs may join a search)
        self.idle_seconds = idle_seconds
        self.sync_seconds = sync_seconds
        self._boards: dict[str, Board] = {}
        self._lock = threading.Lock()  # guards _boards and _opening
        self._opening: dict[str, threading.Lock] = {}
        self._stopping = threading.Event()
        self._stop_leftovers()
        self._keeper = threading.Thread(target=self._keep, name="tensorboards", daemon=True)
        self._keeper.start()

    def open(self, runs: RunSet, resolved: Resolved) -> Board:
        """The set's TensorBoard: the running one, or a new one on a fresh mirror."""
        with self._lock:
            opening = self._opening.setdefault(runs.set_id, threading.Lock())
        # One opening per set at a time; other sets (and the proxy) are not held up while
        # this one's mirror downloads.
        with opening:
            with self._lock:
                board = self._boards.get(runs.set_id)
                if board is not None and board.exited() is None:
                    board.last_used = time.monotonic()
                    return board
                if board is not None:
                    self._remove(board)
            board = self._start(runs, resolved)
            with self._lock:
                self._boards[runs.set_id] = board
            return board

    def get(self, set_id: str) -> Board | None:
        with self._lock:
            return self._boards.get(set_id)

    def used(self, board: Board) -> None:
        board.last_used = time.monotonic()

    def list(self) -> list[Board]:
        with self._lock:
            return list(self._boards.values())

    def forget(self, board: Board) -> None:
        """Stop a board (one whose process exited, say) and drop its mirror."""
        with self._lock:
            if self._boards.get(board.set_id) is board:
                self._remove(board)

    def stop_all(self) -> None:
        self._stopping.set()
        with self._lock:
            for board in list(self._boards.values()):
                self._remove(board)
        self._keeper.join(timeout=10)

    # -- inside ---------------------------------------------------------------------------
    def _start(self, runs: RunSet, resolved: Resolved) -> Board:
        folder = self.root / runs.set_id
        logdir = folder / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        self._mirror(logdir, resolved)
        port = free_port()
        log_file = folder / "tensorboard.log"
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
                   "--host", "127.0.0.1", "--port", str(port),
                   "--path_prefix", f"{PREFIX}/{runs.set_id}",
                   # As often as the mirror changes; every event file of a run is followed
                   # (a restarted run writes a second one); the Python loader: one process
                   # to stop, and it reads what the mirror appends.
                   "--reload_interval", str(max(1.0, self.sync_seconds)),
                   "--reload_multifile", "true", "--load_fast", "false",
                   "--window_title", f"spellray {runs.set_id}"]
        with log_file.open("wb") as out:
            # Its own session: stopping it stops anything it started, and a Ctrl-C meant
            # for the server's terminal does not reach it first.
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        (folder / PID_FILE).write_text(str(process.pid))
        log.info("TensorBoard %s on port %s (pid %s)", runs.set_id, port, process.pid)
        return Board(runs=runs, port=port, process=process, logdir=logdir, log_file=log_file,
                     run_ids=[f.run_id for f in resolved.folders], active=resolved.active)

    def _mirror(self, logdir: Path, resolved: Resolved) -> None:
        for folder in resolved.folders:
            mirror_folder(self.storage, folder.source, logdir / str(folder.run_id))

    def _remove(self, board: Board) -> None:
        self._boards.pop(board.set_id, None)
        _stop_process(board.process)
        shutil.rmtree(board.logdir, ignore_errors=True)  # the mirror; its log stays
        (board.logdir.parent / PID_FILE).unlink(missing_ok=True)
        log.info("TensorBoard %s stopped", board.set_id)

    def _stop_leftovers(self) -> None:
        """TensorBoards a killed server left running (each is in a session of its own, so
        nothing else stops them), and their mirrors."""
        for pid_file in self.root.glob(f"*/{PID_FILE}"):
            logdir = pid_file.parent / "logs"
            try:
                process = psutil.Process(int(pid_file.read_text()))
                if str(logdir) in process.cmdline():  # that TensorBoard, not a reused pid
                    os.killpg(process.pid, signal.SIGKILL)
                    log.info("stopped TensorBoard pid %s left by an earlier server",
                             process.pid)
            except (ValueError, OSError, psutil.Error):
                pass
            pid_file.unlink(missing_ok=True)
            shutil.rmtree(logdir, ignore_errors=True)

    def _keep(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            for board in self.list():
                try:
                    self._look_after(board)
                except Exception:  # the keeper must outlive any one board
                    log.exception("TensorBoard %s: refresh failed", board.set_id)

    def _look_after(self, board: Board) -> None:
        now = time.monotonic()
        if board.exited() is not None or now - board.last_used > self.idle_seconds:
            self.forget(board)
            return
        if board.active and now - board.last_sync >= self.sync_seconds:
            resolved = self.resolve(board.runs)
            self._mirror(board.logdir, resolved)
            # One last pass after the runs end: what they wrote at the end is in.
            board.active = resolved.active
            board.run_ids = [f.run_id for f in resolved.folders]
            board.last_sync = time.monotonic()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the TensorBoard's process group; SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=STOP_GRACE_SECONDS)


def start_failed(board: Board, why: str) -> InternalError:
    return InternalError(f"TensorBoard for {board.set_id} stopped ({why}); see "
                         f"SPELLRAY_HOME/tensorboard/{board.set_id}/tensorboard.log")

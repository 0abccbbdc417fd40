"""The user's command: a shell in a process group of its own, its output relayed line by line.

Stopping it signals the whole group (the shell and all it started); a watcher ends the group
if the runner itself dies, so the user's processes never outlive it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

# Seconds the user's command gets between SIGTERM and SIGKILL when the run is stopped.
TERM_GRACE = 10.0


class Command:
    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        # Set by stop(), even before the command started: it is then stopped as it starts.
        self.stopping = False

    def run(self, command: str, cwd: Path, env: dict[str, str],
            write: Callable[[bytes], None], prefix: Sequence[str] = ()) -> int:
        """Run ``command`` to its end, handing each line of its output to ``write``; its exit
        code, 128 + N when signal N ended it (the shell's convention). ``prefix`` goes before
        the shell (the /spell namespace: runner/spell_folder.py); it must ``exec`` the shell,
        so the process started here is the user's and the group's signals reach it."""
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        self.child = subprocess.Popen(
            [*prefix, shell, "-c", command], cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env},
        )
        if self.stopping:  # stopped while it was being started
            self._signal(signal.SIGTERM)
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
            write(line)
        try:
            code = self.child.wait(timeout=TERM_GRACE if self.stopping else None)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.child.wait()
        watcher.kill()
        return 128 - code if code < 0 else code

    def pid(self) -> int | None:
        """The user's command's process (its shell), once started: the root of the process
        tree hardware stats measure."""
        return self.child.pid if self.child is not None else None

    def ended(self) -> bool:
        return self.child is not None and self.child.poll() is not None

    def stop(self) -> None:
        """SIGTERM the command's process group (as Ray stops a job); safe in a signal handler
        and from another thread."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the process group: for a command still there after the grace."""
        if self.child is not None:
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        assert self.child is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signum)

"""How a run's command is launched: ``single`` (on the runner's node, in its working folder)
or ``distributed`` (N ranks in a Ray placement group). The runner (runner/main.py) picks one
and drives it through this interface; the strategies never import the runner back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Launch(Protocol):
    # Why run() failed, when it knows better than "the command exited with code N".
    failure_reason: str | None
    # Why the run was interrupted (a node it used was lost): it ends `interrupted`, not failed.
    interrupted_reason: str | None

    def reserve(self) -> str | None:
        """Wait for what the command needs (the status says what is missing meanwhile); the
        reason to fail the run, or None once ready (or when the run was stopped meanwhile)."""
        ...

    def sample_stats(self, record: Callable[[dict[str, Any]], None], interval: float) -> None:
        """Sample the command's hardware every ``interval`` seconds while it runs, and once
        at its end, handing each sample to ``record`` (runner/hardware_stats.py). Called
        before run(), or never (stats off)."""
        ...

    def run(self, command: str, env: dict[str, str]) -> int:
        """Run the command to its end; the run's exit code."""
        ...

    def stop(self) -> None:
        """End the command (SIGTERM, SIGKILL after a grace): the run was stopped. Safe in a
        signal handler and from another thread."""
        ...

    def ended(self) -> bool:
        """The command has ended: there is nothing left to stop."""
        ...

    def save_outputs(self) -> list[str]:
        """Upload the outputs to runs/<id>/; their paths."""
        ...

    def close(self) -> None:
        """Free what the launch holds (ranks, the placement group). Once, at the end."""
        ...
